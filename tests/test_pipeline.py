"""End to end: HTTP batches through the gateway, Kafka and the loader into ClickHouse, checked with SQL."""

import json

import httpx
import pytest
from pravis_rollups.clickhouse import connect

from tests.helpers import now_iso, page_view, stored_counts, voice_request, wait_until_stored
from tests.support import services

EVENTS_PATH = "/api/v1/analytics/events"


@pytest.fixture
def post(gateway_url: str, api_key: str):
    def send(body, key: str | None = api_key, **kwargs) -> httpx.Response:
        headers = {"X-API-Key": key} if key else {}
        if isinstance(body, bytes):
            return httpx.post(gateway_url + EVENTS_PATH, content=body, headers=headers, **kwargs)
        return httpx.post(gateway_url + EVENTS_PATH, json=body, headers=headers, **kwargs)

    return send


def test_posted_events_are_queryable_once_each(post, loader, clickhouse_url: str) -> None:
    batches = [[page_view(), voice_request(), page_view(event_type="custom_checkout")] for _ in range(5)]
    for batch in batches:
        response = post({"events": batch, "sent_at": now_iso()})
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok", "processed": 3}
    ids = [e["event_id"] for batch in batches for e in batch]

    counts = wait_until_stored(clickhouse_url, ids)

    assert counts == dict.fromkeys(ids, 1)


def test_stored_rows_carry_server_fields_and_no_raw_ip(post, loader, clickhouse_url: str) -> None:
    view = page_view(ip="203.0.113.77", user_agent="Mozilla/5.0")
    voice = voice_request()
    assert post({"events": [view, voice]}).status_code == 200
    wait_until_stored(clickhouse_url, [view["event_id"], voice["event_id"]])

    with connect(clickhouse_url) as client:
        rows = client.query(
            "SELECT event_type, project_id, ip, intent, request_duration_ms, success, "
            "received_at >= timestamp - INTERVAL 1 MINUTE FROM events FINAL "
            "WHERE event_id IN {ids:Array(UUID)} ORDER BY event_type",
            parameters={"ids": [view["event_id"], voice["event_id"]]},
        ).result_rows

    assert rows == [
        ("page_view", "test-project", "203.0.113.0", None, None, None, True),
        ("voice_request", "test-project", None, "find red shoes", 812.5, True, True),
    ]


def test_redelivered_event_counts_once(post, loader, clickhouse_url: str) -> None:
    event = page_view()
    for _ in range(3):
        assert post({"events": [event]}).json()["status"] == "ok"

    counts = wait_until_stored(clickhouse_url, [event["event_id"]])

    assert counts == {event["event_id"]: 1}


def test_partial_batch_reports_each_rejected_index(post, loader, clickhouse_url: str) -> None:
    good = page_view()
    naive_time = page_view(timestamp="2026-01-01T10:00:00")
    no_identity = page_view(anonymous_id=None)
    bad_rating = {**page_view(event_type="feedback"), "rating": 9}
    bad_rating.pop("page_url")

    response = post({"events": [good, naive_time, no_identity, bad_rating]})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "partial" and body["processed"] == 1
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3]
    assert "timezone" in body["rejected"][0]["error"]
    assert "rating" in body["rejected"][2]["error"]
    assert wait_until_stored(clickhouse_url, [good["event_id"]]) == {good["event_id"]: 1}
    assert stored_counts(clickhouse_url, [e["event_id"] for e in (naive_time, no_identity, bad_rating)]) == {}


@pytest.mark.parametrize(
    ("body", "key", "status", "reason"),
    [
        (b"{not json", "valid", 400, "JSON"),
        (b'{"events": {"a": 1}}', "valid", 400, "events"),
        (b'{"events": [{"event_type": "page_view"}]}', None, 401, "X-API-Key"),
        (b'{"events": []}', "pvw_not-a-real-key", 401, "unknown"),
    ],
)
def test_bad_requests_get_4xx_with_reason(post, api_key, body, key, status, reason) -> None:
    response = post(body, key=api_key if key == "valid" else key)

    assert response.status_code == status
    assert reason in response.text


def test_all_invalid_batch_is_400(post) -> None:
    response = post({"events": [page_view(rating=3)]})

    assert response.status_code == 400
    assert response.json()["rejected"][0]["index"] == 0


def test_limits_answer_413(post) -> None:
    assert post({"events": [page_view() for _ in range(501)]}).status_code == 413
    assert post(b" " * (1024 * 1024 + 1)).status_code == 413

    oversize = page_view(properties={"blob": "x" * 8000, "more": ["y" * 8000] * 4})
    assert len(json.dumps(oversize)) > 32 * 1024
    response = post({"events": [page_view(), oversize]})
    body = response.json()
    assert (response.status_code, body["status"], body["processed"]) == (200, "partial", 1)
    [rejected] = body["rejected"]
    assert set(rejected) == {"index", "error"} and rejected["index"] == 1
    assert "limit is 32768" in rejected["error"]


def test_nothing_accepted_is_lost_across_a_loader_restart(
    post, loader: services.Process, clickhouse_url: str, worker_env: dict[str, str]
) -> None:
    before = [page_view() for _ in range(50)]
    assert post({"events": before}).status_code == 200
    assert len(wait_until_stored(clickhouse_url, [e["event_id"] for e in before])) == 50

    loader.kill()
    while_down = [voice_request() for _ in range(50)]
    assert post({"events": while_down}).json() == {"status": "ok", "processed": 50}
    loader.start()
    services.wait_for_http(
        f"http://127.0.0.1:{worker_env['PRAVIS_LOADER_HEALTH_PORT']}/healthz", loader.popen
    )

    ids = [e["event_id"] for e in before + while_down]
    assert wait_until_stored(clickhouse_url, ids) == dict.fromkeys(ids, 1)


def test_order_amounts_are_stored_exactly(post, loader, clickhouse_url: str) -> None:
    """Money goes through the gateway's JSON, Kafka and ClickHouse as decimals: the stored Decimal(18, 4)
    values are the digits sent, as JSON numbers or strings, and the basket lines keep theirs."""
    order = page_view(
        event_type="order_completed",
        order_id="o-exact",
        revenue=99999999999.9999,
        currency="usd",
        tax="0.1",
        discount=0.3,
        items=[{"sku": "SHOE-38", "price": 33.33, "quantity": 3}, {"sku": "BAG", "price": "0.0001"}],
    )
    response = post({"events": [order]})
    assert response.json() == {"status": "ok", "processed": 1}, response.text
    wait_until_stored(clickhouse_url, [order["event_id"]])

    with connect(clickhouse_url) as client:
        rows = client.query(
            "SELECT toString(revenue), currency, toString(tax), toString(discount), "
            "arrayMap(i -> (i.sku, i.quantity, toString(i.price)), items), toString(tax + discount) "
            "FROM events FINAL WHERE event_id = {id:UUID}",
            parameters={"id": order["event_id"]},
        ).result_rows

    assert rows == [
        (
            "99999999999.9999",
            "USD",
            "0.1",
            "0.3",
            [("SHOE-38", 3, "33.33"), ("BAG", 1, "0.0001")],
            "0.4",
        )
    ]
