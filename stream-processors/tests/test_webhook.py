"""Webhook delivery against a real HTTP server on a free local port: retries, refusals, payload shape."""

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from pravis_schemas.messages import Alert, AlertStatus
from pravis_schemas.webhook import Backoff
from pravis_stream.webhook import deliver, slack_payload, slack_sink

from tests.support.services import free_port


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self, port: int, statuses: list[int]) -> None:
        self.statuses, self.bodies = statuses, []
        super().__init__(("127.0.0.1", port), Handler)


class Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(json.loads(body))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver(request) -> Iterator[tuple[str, Receiver]]:
    server = Receiver(free_port(), list(request.param))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", server
    finally:
        server.shutdown()
        server.server_close()


ALERT = Alert(
    alert_id="p1-abc",
    status="firing",
    severity="critical",
    project_id="p1",
    metric="api_error_rate",
    labels={"endpoint": "/api/v1/cart"},
    observed=0.4,
    expected=0.01,
    window_start=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
    window_end=datetime(2026, 11, 25, 12, 0, 5, tzinfo=UTC),
    started_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
    message="p1: api_error_rate endpoint=/api/v1/cart is 0.4, expected about 0.01",
)

NOW = datetime(2026, 11, 25, 12, 0, 6, tzinfo=UTC)

# (statuses the receiver answers in turn, outcome, requests it saw)
RETRY_MATRIX = [
    ([200], "delivered", 1),
    ([503, 502, 200], "delivered", 3),
    ([429, 200], "delivered", 2),
    ([500, 500, 500, 500], "failed", 4),
    ([400], "refused", 1),
    ([404, 200], "refused", 1),
]


@pytest.mark.parametrize(("receiver", "outcome", "requests"), RETRY_MATRIX, indirect=["receiver"], ids=str)
async def test_retry_matrix(receiver, outcome, requests):
    url, server = receiver
    async with httpx.AsyncClient(timeout=5) as client:
        assert await deliver(client, slack_sink(url), ALERT, NOW, Backoff(4, 0.001, 0.05)) == outcome
    assert len(server.bodies) == requests
    assert server.bodies[0] == slack_payload(ALERT)


async def test_unreachable_receiver_gives_up_after_the_attempts():
    async with httpx.AsyncClient(timeout=1) as client:
        url = f"http://127.0.0.1:{free_port()}/hook"
        assert await deliver(client, slack_sink(url), ALERT, NOW, Backoff(2, 0.001, 0.01)) == "failed"


def test_payload_is_slack_compatible():
    payload = slack_payload(ALERT)
    assert payload["text"].startswith("[FIRING] p1: api_error_rate (endpoint=/api/v1/cart)")
    attachment = payload["attachments"][0]
    assert attachment["color"] == "#d7263d"
    assert {f["title"] for f in attachment["fields"]} == {"observed", "expected", "severity", "started"}
    assert payload["pravis_alert"]["alert_id"] == "p1-abc"
    resolved = slack_payload(ALERT.model_copy(update={"status": AlertStatus.RESOLVED}))
    assert resolved["attachments"][0]["color"] == "#2a9d8f"
