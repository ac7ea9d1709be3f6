"""Privacy end to end: consent on every gateway process, PII never stored raw, export, verified deletion."""

import asyncio
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

import httpx
import pytest
from pravis_gateway.keys import KeyStore
from pravis_rollups.clickhouse import connect
from pravis_rollups.jobs import run_rollups
from pravis_schemas import rows_of_record

from tests.helpers import (
    delete_user_data,
    export_user_data,
    now_iso,
    page_view,
    post_batch,
    rows_holding,
    wait_until_stored,
)
from tests.support import services

# A consent withdrawal reads the identity graph (it follows the person), which the loader's migrations create.
pytestmark = pytest.mark.usefixtures("loader")


def consent(gateway_url: str, key: str, subject: str, **categories: bool) -> httpx.Response:
    return httpx.put(f"{gateway_url}/api/v1/consent/{subject}", json=categories, headers={"X-API-Key": key})


def feedback(user: str, **fields) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "feedback",
        "timestamp": now_iso(),
        "user_id": user,
        "rating": 2,
        "comment": "too slow",
        "interaction_id": "i-" + user,
        **fields,
    }


def test_consent_is_enforced_per_category(gateway_url: str, api_key: str, secret_key: str) -> None:
    user = "u-consent-" + uuid.uuid4().hex[:6]

    withdrawn = consent(gateway_url, api_key, user, analytics=False, source="banner v3")

    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["consent"] == {
        "analytics": False, "performance": True, "feedback": True, "personalization": True,
    }  # fmt: skip
    assert (
        httpx.get(f"{gateway_url}/api/v1/consent/{user}", headers={"X-API-Key": secret_key}).json()
        == withdrawn.json()
    )
    result = post_batch(gateway_url, api_key, [page_view(user_id=user), feedback(user)])
    assert result == {"status": "ok", "processed": 1, "dropped_no_consent": 1}
    assert consent(gateway_url, api_key, user).status_code == 422


def test_withdrawal_reaches_another_gateway_process(
    gateway_url: str, api_key: str, worker_env: dict[str, str], log_dir: Path
) -> None:
    port = services.free_port()
    other = services.Process(
        "gateway-2", [sys.executable, "-m", "pravis_gateway", "--port", str(port)], log_dir, worker_env
    ).start()
    try:
        other_url = f"http://127.0.0.1:{port}"
        services.wait_for_http(other_url + "/readyz", other.popen)
        user = "u-everywhere-" + uuid.uuid4().hex[:6]
        assert post_batch(other_url, api_key, [page_view(user_id=user)])["processed"] == 1

        assert consent(gateway_url, api_key, user, analytics=False).status_code == 200
        withdrawn_at = time.monotonic()
        # The deadline only bounds a hang; how long it took is printed as a measurement, not asserted.
        deadline = withdrawn_at + 60
        while post_batch(other_url, api_key, [page_view(user_id=user)])["processed"]:
            assert time.monotonic() < deadline, "the withdrawal never reached the other gateway process"
            time.sleep(0.02)
        took = time.monotonic() - withdrawn_at

        assert post_batch(other_url, api_key, [page_view(user_id=user)]).get("dropped_no_consent") == 1
        print(f"withdrawal effective on the other gateway process after {took * 1000:.0f} ms")
    finally:
        other.stop()


def test_no_raw_email_or_ip_reaches_kafka_or_clickhouse(
    gateway_url: str, api_key: str, kafka_bootstrap: str, clickhouse_url: str, loader
) -> None:
    marker = uuid.uuid4().hex[:8]
    email, ip = f"jane.{marker}@example.com", "198.51.100.77"
    events = [
        page_view(
            ip=ip,
            page_url=f"https://boutique.example/checkout?email={email}",
            properties={"note": f"write to {email} from {ip}", "password": "hunter2"},
        ),
        feedback("u-pii-" + marker, comment=f"call me on +44 20 7946 0958 or {email}"),
    ]
    assert post_batch(gateway_url, api_key, events)["processed"] == 2
    wait_until_stored(clickhouse_url, [e["event_id"] for e in events])

    records = asyncio.run(services.read_topic(kafka_bootstrap, "events"))
    mine = [
        row for value in records for row in rows_of_record(value) if marker.encode() in row or b"7946" in row
    ]
    with connect(clickhouse_url) as client:
        stored = client.raw_query(
            "SELECT * FROM events WHERE event_id IN {ids:Array(UUID)} FORMAT JSONEachRow",
            parameters={"ids": [e["event_id"] for e in events]},
        )

    for text in [*mine, stored]:
        assert email.encode() not in text and ip.encode() not in text and b"hunter2" not in text
        assert b"7946 0958" not in text
    assert b"[email]" in stored and b'"ip":"198.51.100.0"' in stored


def test_export_streams_every_personal_row_and_needs_a_secret_key(
    gateway_url: str, api_key: str, secret_key: str, clickhouse_url: str, loader
) -> None:
    user = "u-export-" + uuid.uuid4().hex[:6]
    # Yesterday (UTC) at noon: a day whose rollup can be computed now, whatever the local time zone.
    day = datetime.now(UTC).date() - timedelta(days=1)
    noon = datetime.combine(day, clock_time(12), UTC)
    events = [page_view(user_id=user, timestamp=noon.isoformat()) for _ in range(5)]
    events.append(feedback(user, timestamp=noon.isoformat()))
    assert consent(gateway_url, api_key, user, personalization=False).status_code == 200
    post_batch(gateway_url, api_key, events)
    wait_until_stored(clickhouse_url, [e["event_id"] for e in events])
    scored_id = str(uuid.uuid4())
    with connect(clickhouse_url) as client:
        run_rollups(client, day, day)
        # As the loader stores the stream worker's sentiment of a comment.
        client.insert(
            "feedback_scored",
            [[scored_id, "test-project", noon, user, 2, "too slow", -0.4, "negative", noon]],
            column_names=[
                "event_id",
                "project_id",
                "timestamp",
                "user_id",
                "rating",
                "comment",
                "sentiment_score",
                "sentiment_label",
                "scored_at",
            ],
        )

    def export() -> list[dict]:
        return export_user_data(gateway_url, secret_key, user)

    deadline = time.monotonic() + 60
    rows = export()
    while len(events_rows := [r for r in rows if r["_table"] == "events"]) < 7:
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)
        rows = export()

    assert {r["event_id"] for r in events_rows} >= {e["event_id"] for e in events}
    assert any(r["event_type"] == "consent_change" for r in events_rows)
    assert all(user in (r.get("user_id"), r.get("anonymous_id")) for r in rows if r["_table"] == "events")
    activity = [r for r in rows if r["_table"] == "user_activity_daily"]
    assert [(r["person_id"], r["day"]) for r in activity] == [(user, day.isoformat())]
    scored = [r for r in rows if r["_table"] == "feedback_scored"]
    assert [(r["event_id"], r["sentiment_label"]) for r in scored] == [(scored_id, "negative")]
    write_key_attempt = httpx.get(
        gateway_url + "/api/v1/user/data", params={"user_id": user}, headers={"X-API-Key": api_key}
    )
    assert write_key_attempt.status_code == 401


def daily_active(clickhouse_url: str, day: date) -> dict[str, int]:
    with connect(clickhouse_url) as client:
        rows = client.query(
            "SELECT project_id, toInt64(dau) FROM daily_active_users WHERE day = {day:Date}",
            parameters={"day": day},
        ).result_rows
    return dict(rows)


def wishlist_uses(clickhouse_url: str, day: date) -> tuple[int, list[str]]:
    """privacy-project's uses of the wishlist feature on `day` and who used it, as the opportunities rollups
    hold them."""
    where = "project_id = 'privacy-project' AND day = {day:Date} AND subject = 'wishlist'"
    with connect(clickhouse_url) as client:
        uses = client.query(
            f"SELECT sum(uses) FROM opportunities_daily WHERE {where}", parameters={"day": day}
        )
        users = client.query(
            f"SELECT person_id FROM opportunity_users_daily WHERE {where} ORDER BY person_id",
            parameters={"day": day},
        )
    return uses.result_rows[0][0], [row[0] for row in users.result_rows]


def test_deletion_removes_the_person_everywhere_and_keeps_others_exact(
    gateway_url: str, data_dir: Path, clickhouse_url: str, loader, privacy_worker
) -> None:
    # A project of its own, so the rollups checked here are touched by this test only.
    store = KeyStore(data_dir / "keys.json")
    api_key, _ = store.create("privacy-project", "write")
    secret_key, _ = store.create("privacy-project", "secret")
    doomed, kept = "u-doomed-" + uuid.uuid4().hex[:6], "u-kept-" + uuid.uuid4().hex[:6]
    # Two past UTC days at noon (never the local date, never a day that ends during the test): a deletion
    # must recompute every date the person was active on.
    days = [datetime.now(UTC).date() - timedelta(days=n) for n in (3, 1)]
    noon = [datetime.combine(day, clock_time(12), UTC).isoformat() for day in days]
    events = [page_view(user_id=doomed, timestamp=t) for t in noon for _ in range(2)]
    # Both use a feature on the second day: the opportunities rollups count them, by person.
    used = {"event_type": "feature_use", "feature_name": "wishlist", "timestamp": noon[1]}
    events += [page_view(user_id=doomed, **used)]
    events += [feedback(doomed, timestamp=noon[1])] + [page_view(user_id=kept, timestamp=t) for t in noon]
    events += [page_view(user_id=kept, **used)]
    post_batch(gateway_url, api_key, events)
    wait_until_stored(clickhouse_url, [e["event_id"] for e in events])
    with connect(clickhouse_url) as client:
        run_rollups(client, days[0], days[1])
    assert [daily_active(clickhouse_url, day)["privacy-project"] for day in days] == [2, 2]
    assert wishlist_uses(clickhouse_url, days[1]) == (2, [doomed, kept])

    status = delete_user_data(gateway_url, secret_key, doomed)

    assert status["rows_deleted"]["events"] >= 5
    assert {day.isoformat() for day in days} <= set(status["dates_recomputed"])
    leftovers = rows_holding(clickhouse_url, {doomed})
    assert set(leftovers.values()) == {0}, {column: n for column, n in leftovers.items() if n}
    kept_ids = [e["event_id"] for e in events[-2:]]
    assert wait_until_stored(clickhouse_url, kept_ids) == dict.fromkeys(kept_ids, 1)
    assert [daily_active(clickhouse_url, day)["privacy-project"] for day in days] == [1, 1]
    assert wishlist_uses(clickhouse_url, days[1]) == (1, [kept])

    late = post_batch(gateway_url, api_key, [page_view(user_id=doomed)])
    assert late == {"status": "ok", "processed": 0, "dropped_no_consent": 1}
    unknown = httpx.get(f"{gateway_url}/api/v1/user/data/requests/nope", headers={"X-API-Key": secret_key})
    assert unknown.status_code == 404


def test_retention_ttls_are_applied_and_reported(clickhouse_url: str, loader) -> None:
    from pravis_rollups.retention import report
    from pravis_rollups.settings import Settings

    with connect(clickhouse_url) as client:
        engines = dict(
            client.query(
                "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()"
            ).result_rows
        )
        rows = {row["table"]: row for row in report(client, Settings().retention)}

    assert "TTL toDateTime(timestamp) + toIntervalDay(395)" in engines["events"]
    assert "TTL" not in engines["privacy_requests"]
    assert rows["events"]["keep_days"] == 395 and rows["events"]["oldest"] is not None
    assert rows["daily_active_users"]["keep_days"] > rows["events"]["keep_days"]


def test_a_gateway_started_after_the_changes_rebuilds_consent_from_the_topic(
    gateway_url: str, api_key: str, worker_env: dict[str, str], log_dir: Path
) -> None:
    withdrawn, restored = ("u-rebuilt-" + uuid.uuid4().hex[:6] for _ in range(2))
    assert consent(gateway_url, api_key, withdrawn, analytics=False).status_code == 200
    assert consent(gateway_url, api_key, restored, analytics=False).status_code == 200
    assert consent(gateway_url, api_key, restored, analytics=True).status_code == 200

    port = services.free_port()
    late = services.Process(
        "gateway-late", [sys.executable, "-m", "pravis_gateway", "--port", str(port)], log_dir, worker_env
    ).start()
    try:
        late_url = f"http://127.0.0.1:{port}"
        services.wait_for_http(late_url + "/readyz", late.popen)  # ready only once consent is rebuilt
        assert post_batch(late_url, api_key, [page_view(user_id=withdrawn)]) == {
            "status": "ok",
            "processed": 0,
            "dropped_no_consent": 1,
        }
        restored_view = [page_view(user_id=restored)]
        assert post_batch(late_url, api_key, restored_view) == {"status": "ok", "processed": 1}
    finally:
        late.stop()
