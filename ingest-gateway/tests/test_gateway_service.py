"""The gateway as a process on a broker of its own, so the test can stop it: encodings, beacons, limits, CORS,
feedback, rate limiting, 503 and a failing /readyz while Kafka is down. Each test that gets events accepted
finds them in the topic itself, so no test depends on what another left behind."""

import asyncio
import gzip
import json
import sys
import time
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from pravis_gateway.keys import KeyStore
from pravis_local.broker import broker_command, default_partitions, ensure_topics
from pravis_schemas import rows_of_record
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.support import services

EVENTS = "/api/v1/analytics/events"
ORIGIN = "https://boutique.example"


class Stack:
    def __init__(self, tmp: Path, log_dir: Path) -> None:
        self.broker_port, self.gateway_port = services.free_port(), services.free_port()
        self.bootstrap = f"127.0.0.1:{self.broker_port}"
        self.log_dir = log_dir
        store = KeyStore(tmp / "keys.json")
        self.key, _ = store.create("svc", "write")
        self.limited_key, _ = store.create("svc", "write")
        self.bulk_key, _ = store.create("svc", "write")  # a full-size batch, past the others' rate limit
        self.broker = services.Process("svc-broker", broker_command("127.0.0.1", self.broker_port), log_dir)
        self.gateway = services.Process(
            "svc-gateway",
            [sys.executable, "-m", "pravis_gateway", "--port", str(self.gateway_port)],
            log_dir,
            {
                "PRAVIS_KAFKA_BOOTSTRAP": self.bootstrap,
                "PRAVIS_DATA_DIR": str(tmp),
                "PRAVIS_KAFKA_ACK_TIMEOUT_S": "2",
                "PRAVIS_RATE_LIMIT_EVENTS_PER_S": "100",
                "PRAVIS_RATE_LIMIT_BURST_EVENTS": "1000",
                "PRAVIS_CORS_ORIGINS": ORIGIN,
                # No warehouse: what needs the identity graph must refuse with 503, never guess.
                "PRAVIS_CLICKHOUSE_URL": f"http://127.0.0.1:{services.free_port()}/pravis",
            },
        )
        self.url = f"http://127.0.0.1:{self.gateway_port}"

    def start_broker(self) -> None:
        self.broker.start()
        asyncio.run(ensure_topics(self.bootstrap, default_partitions(2)))

    def post(self, body: bytes | dict, key: str | None = "default", **kwargs) -> httpx.Response:
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        if key:
            headers["X-API-Key"] = self.key if key == "default" else key
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        return httpx.post(self.url + kwargs.pop("path", EVENTS), content=content, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("svc"), log_dir)
    stack.start_broker()
    stack.gateway.start()
    try:
        services.wait_for_http(stack.url + "/readyz", stack.gateway.popen)
        yield stack
    finally:
        stack.gateway.stop()
        stack.broker.stop()


def event(**fields) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "timestamp": datetime.now(UTC).isoformat(),
        "anonymous_id": "anon-svc",
        **fields,
    }


def accepted(stack: Stack, events: list[dict], response: httpx.Response) -> None:
    """The whole batch was acked, and every one of its events is in the `events` topic."""
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "processed": len(events)}
    assert_in_topic(stack, [e["event_id"] for e in events])


def assert_in_topic(stack: Stack, event_ids: list[str]) -> None:
    records = asyncio.run(services.read_topic(stack.bootstrap, "events"))
    in_topic = [orjson.loads(row)["event_id"] for value in records for row in rows_of_record(value)]
    assert {i: in_topic.count(i) for i in event_ids} == dict.fromkeys(event_ids, 1)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bodies(stack: Stack, encoding: str) -> None:
    events = [event() for _ in range(20)]
    raw = orjson.dumps({"events": events})
    body = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)

    accepted(stack, events, stack.post(body, headers={"Content-Encoding": encoding}))


def test_beacon_with_key_in_query_or_body(stack: Stack) -> None:
    in_query, in_body = [event()], [event()]
    text = {"Content-Type": "text/plain;charset=UTF-8"}

    accepted(
        stack,
        in_query,
        stack.post({"events": in_query}, key=None, headers=text, params={"api_key": stack.key}),
    )
    accepted(stack, in_body, stack.post({"events": in_body, "api_key": stack.key}, key=None, headers=text))


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (b"\x1f\x8b not gzip", {"Content-Encoding": "gzip"}, 400, "decompressed"),
        (b"{}", {"Content-Encoding": "br"}, 415, "Content-Encoding"),
        (gzip.compress(b" " * (2 * 1024 * 1024)), {"Content-Encoding": "gzip"}, 413, "larger than"),
        (orjson.dumps({"events": [event()], "extra": 1}), {}, 400, "extra"),
    ],
)
def test_bad_bodies_get_a_reason(stack: Stack, body: bytes, headers: dict, status: int, reason: str) -> None:
    response = stack.post(body, headers=headers)

    assert response.status_code == status
    assert reason in response.json()["error"]


def test_missing_key_is_401_even_with_a_broken_body(stack: Stack) -> None:
    response = stack.post(b"{broken", key=None)

    assert response.status_code == 401
    assert "X-API-Key" in response.json()["error"]


def test_rejected_events_are_published_with_their_reason(stack: Stack) -> None:
    good, bad = event(), event(rating=7)
    response = stack.post({"events": [good, bad]})
    assert response.json() == {
        "status": "partial",
        "processed": 1,
        "rejected": [{"index": 1, "error": response.json()["rejected"][0]["error"]}],
    }
    assert_in_topic(stack, [good["event_id"]])

    rejected = [orjson.loads(v) for v in asyncio.run(services.read_topic(stack.bootstrap, "events.rejected"))]

    mine = [r for r in rejected if orjson.loads(r["raw"])["event_id"] == bad["event_id"]]
    assert len(mine) == 1
    assert mine[0]["index"] == 1 and "rating" in mine[0]["error"] and mine[0]["project_id"] == "svc"


def test_feedback_endpoint(stack: Stack) -> None:
    ok = stack.post(
        {"rating": 5, "comment": "Great fit", "interaction_id": "i-1", "user_id": "u-1"},
        path="/api/v1/feedback",
    )
    assert ok.status_code == 200, ok.text
    assert_in_topic(stack, [ok.json()["event_id"]])

    too_high = stack.post({"rating": 6, "user_id": "u-1"}, path="/api/v1/feedback")
    nobody = stack.post({"rating": 3}, path="/api/v1/feedback")

    assert too_high.status_code == 422 and "rating" in too_high.json()["error"]
    assert nobody.status_code == 422 and "anonymous_id" in nobody.json()["error"]


def test_cors_for_configured_origins_only(stack: Stack) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key,content-type",
    }

    allowed = httpx.options(stack.url + EVENTS, headers={"Origin": ORIGIN, **preflight})
    other = httpx.options(stack.url + EVENTS, headers={"Origin": "https://evil.example", **preflight})

    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in other.headers


def test_rate_limit_answers_429_with_retry_after(stack: Stack) -> None:
    responses, admitted = [], []
    while len(responses) < 10 and (not responses or responses[-1].status_code == 200):
        events = [event() for _ in range(400)]
        responses.append(stack.post({"events": events}, key=stack.limited_key))
        if responses[-1].status_code == 200:
            admitted += [e["event_id"] for e in events]

    assert [r.status_code for r in responses[:2]] == [200, 200]
    limited = responses[-1]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "rate limit" in limited.json()["error"]
    assert_in_topic(stack, admitted)


def test_503_and_not_ready_while_kafka_is_down_then_recovers(stack: Stack) -> None:
    assert httpx.get(stack.url + "/readyz").status_code == 200
    stack.broker.kill()
    down = stack.post({"events": [event()]})
    assert down.status_code == 503
    assert int(down.headers["Retry-After"]) > 0
    assert "Kafka" in down.json()["error"]
    not_ready = httpx.get(stack.url + "/readyz", timeout=30)
    assert (not_ready.status_code, not_ready.json()) == (503, {"status": "kafka unreachable"})
    assert httpx.get(stack.url + "/healthz").status_code == 200

    stack.start_broker()
    services.wait_for(lambda: httpx.get(stack.url + "/readyz").status_code == 200, 60, "ready again")
    # Fresh events on every attempt: only the batch that was acked has to be in the topic, and exactly once.
    deadline = time.monotonic() + 60
    while (response := stack.post({"events": (events := [event()])})).status_code != 200:
        assert time.monotonic() < deadline, response.text
        time.sleep(0.25)
    accepted(stack, events, response)
    assert metric(stack, "pravis_gateway_requests_total", endpoint="events", status="503") >= 1


def test_a_withdrawal_while_the_identity_graph_is_unreadable_is_a_503_and_nothing_is_published(
    stack: Stack,
) -> None:
    withdrawal = event(event_type="consent_change", user_id="u-unreadable", consent={"analytics": False})
    view = event()

    refused = stack.post({"events": [view, withdrawal]})

    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
    assert "identity graph" in refused.json()["error"]
    records = asyncio.run(services.read_topic(stack.bootstrap, "events"))
    in_topic = {orjson.loads(row)["event_id"] for value in records for row in rows_of_record(value)}
    assert {view["event_id"], withdrawal["event_id"]}.isdisjoint(in_topic)
    consent = asyncio.run(services.read_topic(stack.bootstrap, "consent"))
    assert not any(b"u-unreadable" in value for value in consent)
    grant = event(event_type="consent_change", user_id="u-unreadable", consent={"analytics": True})
    accepted(stack, [grant], stack.post({"events": [grant]}))


def test_a_full_batch_is_in_the_topic_once_each(stack: Stack) -> None:
    more = [event() for _ in range(100)]
    accepted(stack, more, stack.post({"events": more}))


def test_a_batch_at_the_body_limit_is_accepted(stack: Stack) -> None:
    """500 events of one user in a body just under the 1 MiB limit: with the fields the gateway adds its rows
    outgrow the 1 MiB Kafka takes in one request, and were answered 503 on every retry."""
    events = [event(properties={"note": "x" * 1900}) for _ in range(500)]
    body = orjson.dumps({"events": events})
    assert 1_000_000 < len(body) < 1024 * 1024

    accepted(stack, events, stack.post(body, key=stack.bulk_key, timeout=30))


def metric(stack: Stack, name: str, **labels: str) -> float:
    """The value of one sample on the gateway's /metrics, 0 when it was never counted."""
    page = httpx.get(stack.url + "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_count_accepted_and_rejected_by_reason(stack: Stack) -> None:
    before = (
        metric(stack, "pravis_gateway_events_accepted_total"),
        metric(stack, "pravis_gateway_events_rejected_total", reason="invalid"),
        metric(stack, "pravis_gateway_request_seconds_count", endpoint="events"),
    )

    events = [event() for _ in range(7)]
    response = stack.post({"events": [*events, event(rating=9), event(rating=0)]})

    assert response.json()["processed"] == 7
    after = (
        metric(stack, "pravis_gateway_events_accepted_total"),
        metric(stack, "pravis_gateway_events_rejected_total", reason="invalid"),
        metric(stack, "pravis_gateway_request_seconds_count", endpoint="events"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [7, 2, 1]


def accepted_per_worker(multiproc_dir: Path) -> dict[str, float]:
    """Events each worker process counted, read from its own prometheus_client file (one per pid)."""
    counted = {}
    for path in multiproc_dir.glob("counter_*.db"):
        values = MmapedDict.read_all_values_from_file(str(path))
        counted[path.stem] = sum(
            value for key, value, *_ in values if json.loads(key)[1] == "pravis_gateway_events_accepted_total"
        )
    return counted


def test_metrics_sum_every_worker_of_a_multi_worker_gateway(
    stack: Stack, log_dir: Path, tmp_path: Path
) -> None:
    port, metrics_port = services.free_port(), services.free_port()
    workers = services.Process(
        "svc-gateway-workers",
        [sys.executable, "-m", "pravis_gateway", "--port", str(port), "--workers", "2"],
        log_dir,
        {
            **stack.gateway.env,
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
            "PRAVIS_GATEWAY_METRICS_PORT": str(metrics_port),
            "PRAVIS_RATE_LIMIT_EVENTS_PER_S": "0",
        },
    ).start()
    try:
        url = f"http://127.0.0.1:{port}"
        services.wait_for_http(url + "/readyz", workers.popen)
        sent: list[str] = []

        def send(batch: list[dict]) -> int:
            headers = {"X-API-Key": stack.key, "Content-Type": "application/json"}
            body = orjson.dumps({"events": batch})
            return httpx.post(url + EVENTS, content=body, headers=headers).status_code

        # Concurrent requests on fresh connections until both workers have taken some (the deadline only
        # bounds a hang): a sum over one worker would prove nothing.
        deadline = time.monotonic() + 120
        while len([n for n in accepted_per_worker(tmp_path).values() if n > 0]) < 2:
            assert time.monotonic() < deadline, accepted_per_worker(tmp_path)
            batches = [[event() for _ in range(10)] for _ in range(16)]
            with ThreadPoolExecutor(8) as pool:
                assert list(pool.map(send, batches)) == [200] * len(batches)
            sent += [e["event_id"] for batch in batches for e in batch]

        page = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        accepted = sum(
            sample.value
            for family in text_string_to_metric_families(page)
            for sample in family.samples
            if sample.name == "pravis_gateway_events_accepted_total"
        )
        assert accepted == len(sent) == sum(accepted_per_worker(tmp_path).values())
        assert_in_topic(stack, sent)
    finally:
        workers.stop()
