"""Event factories and warehouse polling shared by the end-to-end tests."""

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from pravis_rollups.clickhouse import connect

EVENTS_PATH = "/api/v1/analytics/events"
RETAINED_AFTER_DELETION = {"privacy_requests", "consent_history"}
"""Kept after a deletion on purpose (GDPR accountability: who asked, what they consented to)."""
ID_TYPE = re.compile(r"^(LowCardinality\()?(Nullable\()?String\)*$")


def post_batch(gateway_url: str, key: str, events: list[dict]) -> dict:
    """The gateway's answer to one events batch, which must be a 200."""
    response = httpx.post(gateway_url + EVENTS_PATH, json={"events": events}, headers={"X-API-Key": key})
    assert response.status_code == 200, response.text
    return response.json()


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def page_view(**overrides: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "timestamp": now_iso(),
        "anonymous_id": "anon-" + uuid.uuid4().hex[:8],
        "session_id": "s-1",
        "page_url": "https://boutique.example/shoes",
        **overrides,
    }


def voice_request(**overrides: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "voice_request",
        "timestamp": now_iso(),
        "user_id": "u-" + uuid.uuid4().hex[:6],
        "interaction_id": "i-" + uuid.uuid4().hex[:6],
        "intent": "Find  RED shoes",
        "request_duration_ms": 812.5,
        "success": True,
        "model_used": "whisper-small",
        **overrides,
    }


def stored_counts(clickhouse_url: str, event_ids: list[str]) -> dict[str, int]:
    """How many rows each event_id has in `events`, deduplicated the way analysts are told to query."""
    with connect(clickhouse_url) as client:
        rows = client.query(
            "SELECT toString(event_id), count() FROM events FINAL WHERE event_id IN {ids:Array(UUID)} "
            "GROUP BY event_id",
            parameters={"ids": event_ids},
        ).result_rows
    return dict(rows)


def wait_until_stored(clickhouse_url: str, event_ids: list[str], timeout_s: float = 60.0) -> dict[str, int]:
    """Poll until every event_id is queryable (or the deadline passes); return the final counts."""
    deadline = time.monotonic() + timeout_s
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        try:
            counts = stored_counts(clickhouse_url, event_ids)
        except Exception as exc:  # the table appears once the loader's migrations ran
            if "UNKNOWN_TABLE" not in str(exc):
                raise
        if len(counts) == len(event_ids):
            return counts
        time.sleep(0.2)
    return counts


def rows_holding(clickhouse_url: str, ids: set[str]) -> dict[str, int]:
    """Rows holding any of `ids`, per table and column, in every table and view of the database except the
    audit and consent history: every String column compared as it is, every aggregate state as its result."""
    with connect(clickhouse_url) as client:
        columns = client.query(
            "SELECT c.table, c.name, c.type FROM system.columns AS c "
            "INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
            "WHERE c.database = currentDatabase() AND (t.engine LIKE '%MergeTree' OR t.engine = 'View')"
        ).result_rows
        found = {}
        for table, name, type_ in columns:
            if table in RETAINED_AFTER_DELETION:
                continue
            if ID_TYPE.match(type_):
                value = f"`{name}`"
            elif type_.startswith("AggregateFunction("):
                value = f"toString(finalizeAggregation(`{name}`))"
            else:
                continue
            found[f"{table}.{name}"] = client.query(
                f"SELECT count() FROM `{table}` WHERE {value} IN {{ids:Array(String)}}",
                parameters={"ids": sorted(ids)},
            ).result_rows[0][0]
    return found


def export_user_data(gateway_url: str, secret_key: str, subject: str) -> list[dict]:
    """The rows `GET /api/v1/user/data` streams about `subject` (secret key), one dict per NDJSON line."""
    with httpx.stream(
        "GET",
        gateway_url + "/api/v1/user/data",
        params={"user_id": subject},
        headers={"X-API-Key": secret_key},
        timeout=60,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [orjson.loads(line) for line in response.iter_lines() if line]


def delete_user_data(gateway_url: str, secret_key: str, subject: str) -> dict:
    """Ask for `subject`'s deletion (secret key) and poll its request until `done`; the final status."""
    response = httpx.delete(
        gateway_url + "/api/v1/user/data",
        params={"user_id": subject},
        headers={"X-API-Key": secret_key},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    status_url = f"{gateway_url}/api/v1/user/data/requests/{response.json()['request_id']}"
    deadline = time.monotonic() + 90
    while (status := httpx.get(status_url, headers={"X-API-Key": secret_key}).json())["status"] != "done":
        assert status["status"] == "pending" and time.monotonic() < deadline, status
        time.sleep(0.3)
    return status
