"""How much and how slowly a client may send: one pure-ASGI middleware, standard library only.

Every HTTP service of the pipeline (gateway, dashboards, live API, embedded warehouse) wraps its app in
`BodyLimits`, so no endpoint reads an unbounded body into memory and no client holds a connection by sending
half a body and going silent:

- a body whose declared `Content-Length` passes `max_body_bytes` is answered 413 before the app runs, and one
  sent without a length (chunked) is answered 413 as soon as the bytes read pass the limit, never read whole;
- a body not received completely within `timeout_s` of the request's start is answered 408.

Both answers carry the project's error shape `{"status": "error", "error": "..."}` and `Connection: close`,
so the server drops the connection instead of waiting for (or draining) the rest. The app, if it was reading,
sees the client as disconnected, and whatever it still answers or raises is discarded: the client already has
its answer. `on_refusal(reason)` lets the service count refusals (`body_too_large`, `body_timeout`).
"""

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BODY_TOO_LARGE = "body_too_large"
BODY_TIMEOUT = "body_timeout"
DISCONNECT: Message = {"type": "http.disconnect"}


def error_body(message: str) -> bytes:
    """The project's one error shape, as every Pravis HTTP service answers a refusal."""
    return json.dumps({"status": "error", "error": message}).encode()


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when absent or not a plain number (then bytes are counted)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimits:
    """Refuse bodies over `max_body_bytes` (413) and bodies not received within `timeout_s` (408)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        timeout_s: float,
        on_refusal: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s
        self.on_refusal = on_refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await _Exchange(self, receive, send).run(scope)


class _Exchange:
    """One request/response under the limits; `receive` and `send` stand in for the server's to the app."""

    def __init__(self, limits: BodyLimits, receive: Receive, send: Send) -> None:
        self.limits = limits
        self.server_receive = receive
        self.server_send = send
        self.deadline = asyncio.get_running_loop().time() + limits.timeout_s
        self.body_bytes = 0
        self.body_complete = False
        self.response_started = False
        self.refused = False

    async def run(self, scope: Scope) -> None:
        declared = declared_length(scope)
        if declared is not None and declared > self.limits.max_body_bytes:
            await self.refuse(413, BODY_TOO_LARGE, self.too_large())
            return
        try:
            await self.limits.app(scope, self.receive, self.send)
        except Exception:
            # The app failed because its client was cut off by a refusal; the refusal is the answer.
            if not self.refused:
                raise

    def too_large(self) -> str:
        return f"body larger than {self.limits.max_body_bytes} bytes"

    async def receive(self) -> Message:
        if self.refused:
            return DISCONNECT
        if self.body_complete:
            # After the body the app only waits for a disconnect, for as long as its response takes.
            return await self.server_receive()
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self.server_receive()
        except TimeoutError:
            await self.refuse(
                408, BODY_TIMEOUT, f"body not received within {self.limits.timeout_s:g} s; send it at once"
            )
            return DISCONNECT
        if message["type"] == "http.request":
            self.body_bytes += len(message.get("body", b""))
            if self.body_bytes > self.limits.max_body_bytes:
                await self.refuse(413, BODY_TOO_LARGE, self.too_large())
                return DISCONNECT
            self.body_complete = not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return
        if message["type"] == "http.response.start":
            self.response_started = True
        await self.server_send(message)

    async def refuse(self, status: int, reason: str, message: str) -> None:
        self.refused = True
        if self.limits.on_refusal is not None:
            self.limits.on_refusal(reason)
        if self.response_started:
            return
        body = error_body(message)
        await self.server_send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await self.server_send({"type": "http.response.body", "body": body})
