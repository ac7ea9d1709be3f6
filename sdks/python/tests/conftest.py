"""A scripted stand-in for the gateway (httpx MockTransport) that records every batch it is sent."""

import gzip
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest


class FakeGateway:
    """Answers from `script` (status, headers) in order, then 200 ok; records each request's batch."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self.lock = threading.Lock()

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = request.content
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        batch = json.loads(body)
        with self.lock:
            self.requests.append(batch)
            self.headers.append(request.headers)
            status, headers = self.script.pop(0) if self.script else (200, {})
        if status == 200:
            return httpx.Response(200, json={"status": "ok", "processed": len(batch["events"])})
        return httpx.Response(
            status, json={"status": "error", "error": f"scripted {status}"}, headers=headers
        )

    @property
    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e for batch in self.requests for e in batch["events"]]

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def async_transport(self) -> httpx.MockTransport:
        async def handle(request: httpx.Request) -> httpx.Response:
            await request.aread()
            return self.handle(request)

        return httpx.MockTransport(handle)


@pytest.fixture
def fake_gateway() -> Iterator[FakeGateway]:
    yield FakeGateway()
