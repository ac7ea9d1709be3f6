"""The shared webhook POST against a real HTTP server on loopback: the retry matrix (blocking and asyncio),
any JSON body and headers, and what a final failure says."""

import http.server
import json
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from pravis_schemas.webhook import Backoff, WebhookError, post_json, post_json_async

FAST = Backoff(attempts=4, first_wait_s=0.001, max_wait_s=0.01)


class Receiver(http.server.ThreadingHTTPServer):
    def __init__(self, statuses: list[int]) -> None:
        self.statuses, self.requests, self.raw_bodies = statuses, [], []
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((dict(self.headers), json.loads(body)))
        self.server.raw_bodies.append(body)
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        answer = f"answer {status}".encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver(request) -> Iterator[Receiver]:
    server = Receiver(list(request.param))
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


# (statuses the receiver answers in turn, final status or the WebhookError's status, requests it saw)
RETRY_MATRIX = [
    ([200], 200, 1),
    ([204], 204, 1),
    ([503, 502, 200], 200, 3),
    ([429, 202], 202, 2),
    ([500, 500, 500, 500], 500, 4),
    ([429, 429, 429, 429, 200], 429, 4),
    ([400], 400, 1),
    ([404, 200], 404, 1),
    ([503, 401, 200], 401, 2),
]


@pytest.mark.parametrize(("receiver", "status", "requests"), RETRY_MATRIX, indirect=["receiver"], ids=str)
def test_retry_matrix_blocking(receiver: Receiver, status: int, requests: int) -> None:
    with httpx.Client(timeout=5) as client:
        try:
            got = post_json(client, receiver.url, {"n": 1}, FAST)
        except WebhookError as exc:
            got = exc.status
    assert got == status
    assert len(receiver.requests) == requests


@pytest.mark.parametrize(("receiver", "status", "requests"), RETRY_MATRIX, indirect=["receiver"], ids=str)
async def test_retry_matrix_async(receiver: Receiver, status: int, requests: int) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            got = await post_json_async(client, receiver.url, {"n": 1}, FAST)
        except WebhookError as exc:
            got = exc.status
    assert got == status
    assert len(receiver.requests) == requests


@pytest.mark.parametrize("receiver", [[]], indirect=True)
def test_any_json_body_and_headers_are_sent_as_given(receiver: Receiver) -> None:
    body = {"text": "ünïcode ✓", "nested": [1, 2.5, None, True], "labels": {"a": "b"}}
    with httpx.Client(timeout=5) as client:
        post_json(client, receiver.url, body, FAST, {"User-Agent": "pravis-test", "X-Signature": "abc"})
    [(headers, sent)] = receiver.requests
    assert sent == body
    assert headers["Content-Type"] == "application/json"
    assert (headers["User-Agent"], headers["X-Signature"]) == ("pravis-test", "abc")


@pytest.mark.parametrize("receiver", [[503, 200]], indirect=True)
async def test_a_bytes_body_arrives_byte_for_byte_on_every_try(receiver: Receiver) -> None:
    body = b'{"b": 1,  "a": "\\u00fc"}'
    async with httpx.AsyncClient(timeout=5) as client:
        await post_json_async(client, receiver.url, body, FAST, {"X-Signature": "abc"})
    assert receiver.raw_bodies == [body, body]
    assert receiver.requests[1][0]["Content-Type"] == "application/json"
    assert receiver.requests[1][0]["X-Signature"] == "abc"


@pytest.mark.parametrize("receiver", [[422]], indirect=True)
def test_a_refusal_keeps_the_receivers_answer(receiver: Receiver) -> None:
    with httpx.Client(timeout=5) as client, pytest.raises(WebhookError) as raised:
        post_json(client, receiver.url, {}, FAST)
    assert str(raised.value) == "webhook answered 422: answer 422"
    assert not raised.value.retryable


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_receiver_is_retried_then_fails_without_a_status() -> None:
    attempts = []

    class Counting(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            attempts.append(request.url)
            return super().handle_request(request)

    with httpx.Client(timeout=1, transport=Counting()) as client, pytest.raises(WebhookError) as raised:
        post_json(client, f"http://127.0.0.1:{closed_port()}/hook", {}, FAST)
    assert raised.value.status is None and raised.value.retryable
    assert str(raised.value).startswith("webhook failed: ")
    assert len(attempts) == FAST.attempts
