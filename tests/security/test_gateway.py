"""Issue 17, findings 3 and 7, replayed against the running gateway (and, where it matters what was stored,
the loader and warehouse behind it).

Finding 3: an event holding what JSON allows but storage cannot (an integer wider than 64 bits, NaN, a lone
surrogate) is refused on its own with a reason, never a 500, and counted by reason; NUL is kept as data and
duplicate keys keep the last value, down to the warehouse; bytes after a gzip body refuse the whole body; the
endpoints with a request model (feedback, consent) refuse a lone surrogate with a counted 422; a body nested
100,000 deep, with invalid UTF-8 or with a second document is a counted 400.
Finding 7: a 30 MB body to feedback, consent or experiments, sent with no key, is answered 413 before it is
read, and half a body followed by silence is answered 408; both close the connection.
"""

import gzip
import json
import select
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from pravis_rollups.clickhouse import connect
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import page_view, stored_counts, wait_until_stored
from tests.support import services
from tests.support.services import read_response_until_closed

EVENTS = "/api/v1/analytics/events"
K8S = Path(__file__).parents[2] / "deploy" / "k8s"
THIRTY_MB = 30 * 1024 * 1024
BODY_TIMEOUT_S = 10.0
"""The gateway's default PRAVIS_BODY_TIMEOUT_S, which the session's gateway runs with."""


def metric(gateway_url: str, name: str, **labels: str) -> float:
    """A counter's current value summed over the label values not named (0 before its first increment)."""
    text = httpx.get(gateway_url + "/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


class Counters:
    """Counter values before an action, to assert by how much the action moved them."""

    def __init__(self, gateway_url: str, *series: tuple[str, dict[str, str]]) -> None:
        self.gateway_url = gateway_url
        self.series = series
        self.before = [metric(gateway_url, name, **labels) for name, labels in series]

    def deltas(self) -> list[float]:
        return [
            metric(self.gateway_url, name, **labels) - before
            for (name, labels), before in zip(self.series, self.before, strict=True)
        ]


def rejected(reason: str) -> tuple[str, dict[str, str]]:
    return "pravis_gateway_events_rejected_total", {"reason": reason}


def refused(reason: str) -> tuple[str, dict[str, str]]:
    return "pravis_gateway_refusals_total", {"reason": reason}


def post_text(gateway_url: str, api_key: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        gateway_url + EVENTS,
        content=body,
        headers={"Content-Type": "application/json", "X-API-Key": api_key, **headers},
    )


def batch(*events_json: str) -> bytes:
    return ('{"events": [' + ", ".join(events_json) + "]}").encode()


def with_property(event: dict, raw_json_value: str) -> str:
    """The event as JSON text with `properties.value` written verbatim, as a hostile client would write it."""
    return json.dumps({**event, "properties": {"value": "PLACEHOLDER"}}).replace(
        '"PLACEHOLDER"', raw_json_value
    )


@pytest.mark.parametrize(
    ("raw_value", "reason", "error"),
    [
        ("1180591620717411303424", "int_out_of_range", "an integer does not fit in 64 bits (Int64/UInt64)"),
        ("NaN", "invalid", "properties: Property value should be a finite number"),
        ("-Infinity", "invalid", "properties: Property value should be a finite number"),
        ('"half an emoji \\ud83d"', "lone_surrogate", "a string holds a lone UTF-16 surrogate"),
    ],
)
def test_unstorable_values_refuse_only_their_event(
    gateway_url: str, api_key: str, raw_value: str, reason: str, error: str
) -> None:
    good, hostile = page_view(), page_view()
    counters = Counters(gateway_url, rejected(reason))
    body = batch(json.dumps(good), with_property(hostile, raw_value))

    response = post_text(gateway_url, api_key, body)

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["status"], answer["processed"]) == ("partial", 1)
    assert [r["index"] for r in answer["rejected"]] == [1]
    assert answer["rejected"][0]["error"].startswith(error)
    assert counters.deltas() == [1]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"events": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}", "Invalid JSON: recursion limit exceeded"),
        (b'{"events": [{"page_title": "\xff\xfe"}]}', "Invalid JSON: invalid unicode code point"),
        (b'{"events": []} {"events": []}', "Invalid JSON: trailing characters"),
    ],
)
def test_a_body_that_is_not_one_json_batch_is_a_counted_400(
    gateway_url: str, api_key: str, body: bytes, error: str
) -> None:
    counters = Counters(gateway_url, refused("invalid_body"))

    response = post_text(gateway_url, api_key, body)

    assert response.status_code == 400
    assert response.json()["error"].startswith(error)
    assert counters.deltas() == [1]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "POST",
            "/api/v1/feedback",
            '{"rating": 4, "user_id": "u-1", "comment": "half an emoji \\ud83d"}',
            "comment",
        ),
        ("PUT", "/api/v1/consent/u-1", '{"analytics": true, "source": "banner \\ud800"}', "source"),
    ],
)
def test_a_lone_surrogate_in_a_request_model_is_a_counted_422(
    gateway_url: str, api_key: str, method: str, path: str, body: str, field: str
) -> None:
    counters = Counters(gateway_url, refused("invalid_request"))

    response = httpx.request(
        method,
        gateway_url + path,
        content=body.encode(),
        headers={"Content-Type": "application/json", "X-API-Key": api_key},
    )

    assert response.status_code == 422
    assert response.json() == {
        "status": "error",
        "error": f"{field}: Input should be a valid string, unable to parse raw data as a unicode string",
    }
    assert counters.deltas() == [1]


def test_nul_is_kept_and_duplicate_keys_keep_the_last_value_down_to_the_warehouse(
    gateway_url: str, api_key: str, clickhouse_url: str, loader
) -> None:
    with_nul, duplicated = page_view(), page_view()
    body = batch(
        with_property(with_nul, '"a\\u0000b"'), with_property(duplicated, '"first", "value": "last"')
    )

    response = post_text(gateway_url, api_key, body)

    assert response.json() == {"status": "ok", "processed": 2}
    ids = [with_nul["event_id"], duplicated["event_id"]]
    assert wait_until_stored(clickhouse_url, ids) == dict.fromkeys(ids, 1)
    with connect(clickhouse_url) as client:
        stored = dict(
            client.query(
                "SELECT toString(event_id), properties.value::String FROM events FINAL "
                "WHERE event_id IN {ids:Array(UUID)}",
                parameters={"ids": ids},
            ).result_rows
        )
    assert stored == {with_nul["event_id"]: "a\x00b", duplicated["event_id"]: "last"}


def test_bytes_after_a_gzip_body_refuse_it_and_nothing_is_published(
    gateway_url: str, api_key: str, clickhouse_url: str, loader
) -> None:
    user = "anon-" + uuid.uuid4().hex[:8]
    smuggled, barrier = page_view(anonymous_id=user), page_view(anonymous_id=user)
    counters = Counters(gateway_url, refused("bad_compression"))
    body = gzip.compress(orjson.dumps({"events": [smuggled]})) + b"trailing garbage"

    response = post_text(gateway_url, api_key, body, **{"Content-Encoding": "gzip"})

    assert response.status_code == 400
    assert response.json() == {
        "status": "error",
        "error": "body could not be decompressed: bytes follow the end of the compressed body",
    }
    assert counters.deltas() == [1]
    # The barrier shares the user's partition and comes after: once it is stored, the refused one would be.
    assert post_text(gateway_url, api_key, orjson.dumps({"events": [barrier]})).status_code == 200
    assert wait_until_stored(clickhouse_url, [barrier["event_id"]]) == {barrier["event_id"]: 1}
    assert stored_counts(clickhouse_url, [smuggled["event_id"]]) == {}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/feedback"),
        ("PUT", "/api/v1/consent/u-1"),
        ("PUT", "/api/v1/experiments/checkout"),
        ("POST", EVENTS),
    ],
)
def test_thirty_megabytes_without_a_key_are_refused_unread(gateway_url: str, method: str, path: str) -> None:
    counters = Counters(gateway_url, refused("body_too_large"))
    with raw_connection(gateway_url) as sock:
        # Not one byte of the body follows: the answer must not wait for it.
        sock.sendall(head(method, path, f"Content-Length: {THIRTY_MB}"))
        status, headers, body = read_response_until_closed(sock)

    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body) == {"status": "error", "error": "body larger than 1048576 bytes"}
    assert counters.deltas() == [1]


def test_a_chunked_body_without_length_is_refused_once_past_the_limit(gateway_url: str) -> None:
    counters = Counters(gateway_url, refused("body_too_large"))
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    sent = 0
    with raw_connection(gateway_url) as sock:
        sock.sendall(head("POST", "/api/v1/feedback", "Transfer-Encoding: chunked"))
        while sent < THIRTY_MB and not select.select([sock], [], [], 0.01)[0]:
            sock.sendall(chunk)
            sent += len(chunk)
        status, _, body = read_response_until_closed(sock)

    assert status == 413
    assert sent < THIRTY_MB
    assert json.loads(body)["error"] == "body larger than 1048576 bytes"
    assert counters.deltas() == [1]


def test_half_a_body_then_silence_is_answered_408_and_closed(gateway_url: str, api_key: str) -> None:
    counters = Counters(gateway_url, refused("body_timeout"))
    with raw_connection(gateway_url) as sock:
        sock.sendall(head("POST", EVENTS, "Content-Length: 100", f"X-API-Key: {api_key}") + b'{"events": [')
        status, headers, body = read_response_until_closed(sock)

    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body) == {
        "status": "error",
        "error": f"body not received within {BODY_TIMEOUT_S:g} s; send it at once",
    }
    assert counters.deltas() == [1]


def raw_connection(gateway_url: str) -> socket.socket:
    """A client that controls every byte; its timeout bounds every read, so a connection left open fails."""
    host, port = gateway_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=BODY_TIMEOUT_S + 10)


def head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture(autouse=True)
def _no_server_error(gateway_url: str) -> Iterator[None]:
    """Whatever a test sends, the gateway answers no 500."""
    before = metric(gateway_url, "pravis_gateway_server_errors_total")
    yield
    assert metric(gateway_url, "pravis_gateway_server_errors_total") == before


@pytest.mark.parametrize("workers", [1, 2])
def test_metrics_can_move_off_the_public_port(
    worker_env: dict[str, str], log_dir: Path, api_key: str, workers: int
) -> None:
    """With PRAVIS_GATEWAY_METRICS_PORT the public port answers 404 for /metrics and the metrics port serves
    the counts of every worker process (a refusal made by whichever worker took it is in the sum)."""
    port, metrics_port = services.free_port(), services.free_port()
    env = {**worker_env, "PRAVIS_GATEWAY_METRICS_PORT": str(metrics_port)}
    argv = [sys.executable, "-m", "pravis_gateway", "--port", str(port), "--workers", str(workers)]
    gateway = services.Process(f"gateway-metrics-{workers}", argv, log_dir, env).start()
    try:
        url = f"http://127.0.0.1:{port}"
        services.wait_for_http(f"{url}/readyz", gateway.popen)
        public = httpx.get(f"{url}/metrics")
        assert public.status_code == 404 and public.json()["status"] == "error"
        refusals = 4
        for _ in range(refusals):
            assert httpx.post(url + EVENTS, content=b"{", headers={"X-API-Key": api_key}).status_code == 400
        metrics_url = f"http://127.0.0.1:{metrics_port}"
        assert metric(metrics_url, "pravis_gateway_refusals_total", reason="invalid_body") == refusals
    finally:
        gateway.stop()


def test_k8s_scrapes_the_gateway_on_its_metrics_port() -> None:
    deployment, service, *_ = [doc for doc in yaml.safe_load_all((K8S / "gateway.yaml").read_text()) if doc]
    template = deployment["spec"]["template"]
    container = template["spec"]["containers"][0]
    env = {item["name"]: item["value"] for item in container["env"] if "value" in item}
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    metrics_port = int(env["PRAVIS_GATEWAY_METRICS_PORT"])
    assert ports["metrics"] == metrics_port != ports["http"]
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(metrics_port)
    assert {"name": "metrics", "port": metrics_port, "targetPort": "metrics"} in service["spec"]["ports"]
