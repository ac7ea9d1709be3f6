"""The gateway as a process on a broker of its own, so the test can stop it: encodings, beacons, limits, CORS,
feedback, rate limiting, 503 while Kafka is down, and every accepted event present in the topic."""

import asyncio
import gzip
import sys
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from pravis_gateway.keys import KeyStore
from pravis_local import testing
from pravis_local.broker import broker_command, default_partitions, ensure_topics
from pravis_schemas import rows_of_record

EVENTS = "/api/v1/analytics/events"
ORIGIN = "https://boutique.example"


class Stack:
    def __init__(self, tmp: Path, log_dir: Path) -> None:
        self.broker_port, self.gateway_port = testing.free_port(), testing.free_port()
        self.bootstrap = f"127.0.0.1:{self.broker_port}"
        self.log_dir = log_dir
        store = KeyStore(tmp / "keys.json")
        self.key, _ = store.create("svc", "write")
        self.limited_key, _ = store.create("svc", "write")
        self.accepted: list[str] = []
        self.broker = testing.Process("svc-broker", broker_command("127.0.0.1", self.broker_port), log_dir)
        self.gateway = testing.Process(
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
        testing.wait_for_http(stack.url + "/readyz", stack.gateway.popen)
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
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "processed": len(events)}
    stack.accepted += [e["event_id"] for e in events]


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
    assert response.json()["status"] == "partial"
    stack.accepted.append(good["event_id"])
    stack.accepted.append(
        response.request.content and orjson.loads(response.request.content)["events"][0]["event_id"]
    )

    rejected = [orjson.loads(v) for v in asyncio.run(testing.read_topic(stack.bootstrap, "events.rejected"))]

    mine = [r for r in rejected if orjson.loads(r["raw"])["event_id"] == bad["event_id"]]
    assert len(mine) == 1
    assert mine[0]["index"] == 1 and "rating" in mine[0]["error"] and mine[0]["project_id"] == "svc"


def test_feedback_endpoint(stack: Stack) -> None:
    ok = stack.post(
        {"rating": 5, "comment": "Great fit", "interaction_id": "i-1", "user_id": "u-1"},
        path="/api/v1/feedback",
    )
    assert ok.status_code == 200, ok.text
    stack.accepted.append(ok.json()["event_id"])

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
    responses = []
    while len(responses) < 10 and (not responses or responses[-1].status_code == 200):
        events = [event() for _ in range(400)]
        responses.append(stack.post({"events": events}, key=stack.limited_key))
        if responses[-1].status_code == 200:
            stack.accepted += [e["event_id"] for e in events]

    assert [r.status_code for r in responses[:2]] == [200, 200]
    limited = responses[-1]
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert "rate limit" in limited.json()["error"]


def test_503_with_retry_after_while_kafka_is_down_then_recovers(stack: Stack) -> None:
    stack.broker.kill()
    down = stack.post({"events": [event()]})
    assert down.status_code == 503
    assert int(down.headers["Retry-After"]) > 0
    assert "Kafka" in down.json()["error"]

    # The in-memory broker comes back empty, so what was accepted before is checked on a fresh topic below.
    stack.start_broker()
    stack.accepted.clear()
    deadline = 30
    events = [event()]
    for _ in range(deadline * 4):
        response = stack.post({"events": events})
        if response.status_code == 200:
            break
        asyncio.run(asyncio.sleep(0.25))
    accepted(stack, events, response)


def test_every_accepted_event_is_in_the_topic(stack: Stack) -> None:
    more = [event() for _ in range(100)]
    accepted(stack, more, stack.post({"events": more}))

    records = asyncio.run(testing.read_topic(stack.bootstrap, "events"))
    in_topic = {orjson.loads(row)["event_id"] for value in records for row in rows_of_record(value)}

    assert set(stack.accepted) <= in_topic


def test_metrics_count_accepted_and_rejected_by_reason(stack: Stack) -> None:
    page = httpx.get(stack.url + "/metrics").text

    accepted_line = next(
        line for line in page.splitlines() if line.startswith("pravis_gateway_events_accepted_total{")
    )
    assert float(accepted_line.rsplit(" ", 1)[1]) >= 100
    assert 'pravis_gateway_events_rejected_total{reason="invalid"}' in page
    assert 'pravis_gateway_requests_total{endpoint="events",status="503"}' in page
    assert "pravis_gateway_request_seconds_bucket" in page
