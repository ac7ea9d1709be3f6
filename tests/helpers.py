"""Event factories and warehouse polling shared by the end-to-end tests."""

import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import orjson
from pravis_rollups.clickhouse import connect
from pravis_schemas.personal_data import STAGING_TABLE_PREFIX

T = TypeVar("T")
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


def query_rows(clickhouse_url: str, sql: str, **parameters: Any) -> list[tuple]:
    """The rows of one parameterized query."""
    with connect(clickhouse_url) as client:
        return client.query(sql, parameters=parameters).result_rows


def stored_counts(clickhouse_url: str, event_ids: list[str]) -> dict[str, int]:
    """How many rows each event_id has in `events`, deduplicated the way analysts are told to query."""
    rows = query_rows(
        clickhouse_url,
        "SELECT toString(event_id), count() FROM events FINAL WHERE event_id IN {ids:Array(UUID)} "
        "GROUP BY event_id",
        ids=event_ids,
    )
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


def journey_rows(clickhouse_url: str, event_ids: list[str]) -> list[tuple]:
    """`(event_type, user_id, anonymous_id, session, previous_id)` of each event, in the order of `event_ids`;
    `session` numbers the distinct session ids in order of first appearance (None when absent), so a test can
    say "same session" / "a new one" without knowing the ids the SDK made."""
    rows = query_rows(
        clickhouse_url,
        "SELECT toString(event_id), event_type, user_id, anonymous_id, session_id, previous_id "
        "FROM events FINAL WHERE event_id IN {ids:Array(UUID)}",
        ids=event_ids,
    )
    by_id = {row[0]: row[1:] for row in rows}
    sessions: dict[str, int] = {}
    return [
        (
            kind,
            user,
            anonymous,
            None if session is None else sessions.setdefault(session, len(sessions)),
            previous,
        )
        for kind, user, anonymous, session, previous in (by_id[event_id] for event_id in event_ids)
    ]


def persons_of(clickhouse_url: str, ids: list[str]) -> dict[str, str]:
    """`person_overrides` rows of these ids: each id whose person is another id, and that person."""
    rows = query_rows(
        clickhouse_url,
        "SELECT distinct_id, person_id FROM person_overrides WHERE distinct_id IN {ids:Array(String)}",
        ids=ids,
    )
    return dict(rows)


def users_with_history(clickhouse_url: str, ids: list[str]) -> set[str]:
    """The ids among `ids` that `identity_users` knows with events of their own (rule 4's history)."""
    rows = query_rows(
        clickhouse_url,
        "SELECT user_id FROM identity_users WHERE user_id IN {ids:Array(String)} "
        "GROUP BY user_id HAVING sum(events) > 0",
        ids=ids,
    )
    return {user_id for (user_id,) in rows}


def wait_until_equal(read: Callable[[], T], expected: T, timeout_s: float = 60.0) -> T:
    """Poll `read` until it returns `expected` (or the deadline passes); return its last value. The identity
    tables are written by views of the same insert as `events`, each part committed on its own, so a row can
    be in `events` a moment before its link is."""
    deadline = time.monotonic() + timeout_s
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


def rows_holding(clickhouse_url: str, ids: set[str]) -> dict[str, int]:
    """Rows holding any of `ids`, per table and column, in every table and view of the database except the
    audit and consent history: every String column compared as it is, every aggregate state as its result.
    A rollup run's staging copies are left out: they exist only while a run swaps them in, so one listed here
    may be gone by the time it is read (the tables they replace are read)."""
    with connect(clickhouse_url) as client:
        columns = client.query(
            "SELECT c.table, c.name, c.type FROM system.columns AS c "
            "INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
            "WHERE c.database = currentDatabase() AND (t.engine LIKE '%MergeTree' OR t.engine = 'View') "
            "AND NOT startsWith(c.table, {staging:String})",
            parameters={"staging": STAGING_TABLE_PREFIX},
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
