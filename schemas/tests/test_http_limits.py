"""`BodyLimits` in front of a real uvicorn server, driven by a raw socket so the test controls every byte:
oversized bodies (declared or chunked) are refused before they are read whole, a stalled body is answered 408,
and both refusals close the connection."""

import json
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from pravis_schemas.http_limits import BODY_TIMEOUT, BODY_TOO_LARGE, BodyLimits

from tests.support.services import free_port, read_response_until_closed

LIMIT = 1000
TIMEOUT_S = 1.0


@dataclass
class Echo:
    """An app that reads the whole body and answers its length; remembers what it saw."""

    calls: int = 0
    disconnects: int = 0
    refusals: list[str] = field(default_factory=list)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        self.calls += 1
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnects += 1
                return
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        answer = str(size).encode()
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[int, Echo]]:
    echo = Echo()
    port = free_port()
    app = BodyLimits(echo, max_body_bytes=LIMIT, timeout_s=TIMEOUT_S, on_refusal=echo.refusals.append)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield port, echo
    uv.should_exit = True
    thread.join(10)


def connect(port: int) -> socket.socket:
    """A raw client; its timeout is the deadline of every read, so a connection left open fails the test."""
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S + 10)


def request_head(length: int | None, connection: str = "keep-alive") -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return f"POST /echo HTTP/1.1\r\nHost: test\r\nConnection: {connection}\r\n{framing}\r\n\r\n".encode()


def test_a_body_within_the_limits_reaches_the_app(server: tuple[int, Echo]) -> None:
    port, _ = server
    with connect(port) as sock:
        sock.sendall(request_head(LIMIT, connection="close") + b"x" * LIMIT)
        status, _, body = read_response_until_closed(sock)

    assert (status, body) == (200, str(LIMIT).encode())


def test_a_declared_length_over_the_limit_is_refused_before_the_app_runs(server: tuple[int, Echo]) -> None:
    port, echo = server
    calls, refusals = echo.calls, len(echo.refusals)
    with connect(port) as sock:
        sock.sendall(request_head(30 * 1024 * 1024))
        status, headers, body = read_response_until_closed(sock)

    assert status == 413
    assert headers["connection"] == "close"
    assert json.loads(body) == {"status": "error", "error": f"body larger than {LIMIT} bytes"}
    assert echo.calls == calls
    assert echo.refusals[refusals:] == [BODY_TOO_LARGE]


def test_a_chunked_body_over_the_limit_is_refused_before_it_is_all_sent(server: tuple[int, Echo]) -> None:
    port, echo = server
    refusals = len(echo.refusals)
    chunk = b"%x\r\n%s\r\n" % (200, b"y" * 200)
    sent_chunks = 0
    with connect(port) as sock:
        sock.sendall(request_head(None))
        # 100 chunks would be 20x the limit; the answer must come while the client is still sending.
        while sent_chunks < 100 and not select.select([sock], [], [], 0.05)[0]:
            sock.sendall(chunk)
            sent_chunks += 1
        status, headers, body = read_response_until_closed(sock)

    assert status == 413
    assert sent_chunks < 100
    assert headers["connection"] == "close"
    assert json.loads(body)["error"] == f"body larger than {LIMIT} bytes"
    assert echo.refusals[refusals:] == [BODY_TOO_LARGE]


def test_half_a_body_then_silence_is_answered_408_and_closed(server: tuple[int, Echo]) -> None:
    port, echo = server
    refusals, disconnects = len(echo.refusals), echo.disconnects
    with connect(port) as sock:
        sock.sendall(request_head(100) + b"z" * 50)
        status, headers, body = read_response_until_closed(sock)

    assert status == 408
    assert headers["connection"] == "close"
    assert json.loads(body) == {
        "status": "error",
        "error": f"body not received within {TIMEOUT_S:g} s; send it at once",
    }
    assert echo.refusals[refusals:] == [BODY_TIMEOUT]
    assert echo.disconnects == disconnects + 1
