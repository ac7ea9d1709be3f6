"""The live API's HTTP server (Faust's aiohttp web server) hardened for reach beyond loopback: optional
credentials, bounded request bodies, a deadline for requests that never finish arriving, and /metrics on a
port of its own when asked.

What aiohttp does without this (read in aiohttp 3.14 `web_protocol.py`): a request whose head never completes
waits for the keep-alive timer, 3630 s by default and Faust sets none; an unread body (our views read none) is
drained for `lingering_time`, 10 s, before the connection closes; a body a view reads is capped by
`client_max_size` (1 MiB) with 413.
"""

from collections.abc import Awaitable, Callable
from typing import Any

import faust
from aiohttp import web
from pravis_schemas.read_auth import ReadAuth
from prometheus_client import Counter, start_http_server

from pravis_stream.settings import Settings

REFUSED = Counter(
    "pravis_stream_web_refused_total",
    "Live API requests refused, by reason (credentials, body size, bad parameters)",
    ["reason"],
)
UNAUTHENTICATED_PATHS = frozenset({"/healthz"})
"""Probes carry no credentials and learn nothing but up/down."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def application_options(settings: Settings) -> dict[str, Any]:
    """Faust's `web_application_options`: the aiohttp Application's body cap and middlewares."""
    auth = ReadAuth.parse(settings.stream_live_auth) if settings.stream_live_auth else None

    @web.middleware
    async def refusals(request: web.Request, handler: Handler) -> web.StreamResponse:
        if auth is not None and request.path not in UNAUTHENTICATED_PATHS:
            refusal = auth.check(request.headers.get("Authorization"))
            if refusal is not None:
                REFUSED.labels(refusal).inc()
                return web.Response(
                    status=401, text="credentials required", headers={"WWW-Authenticate": auth.challenge}
                )
        try:
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:
            REFUSED.labels("body_too_large").inc()
            raise

    return {"middlewares": [refusals], "client_max_size": settings.stream_web_max_body_bytes}


def bound_request_time(app: faust.App, settings: Settings) -> None:
    """Cut off, after `stream_web_request_timeout_s`, a connection whose request head has not all arrived
    (aiohttp's keep-alive timer also runs from the connection's start) or whose unread body is still coming.

    Faust builds its aiohttp runner with aiohttp's defaults and has no setting for these, so its runner is
    replaced before the server starts; the handler options are aiohttp's public `AppRunner` keywords."""
    timeout = settings.stream_web_request_timeout_s
    app.web._runner = web.AppRunner(
        app.web.web_app, access_log=None, keepalive_timeout=timeout, lingering_time=timeout
    )


class MetricsServer(faust.Service):
    """/metrics on `stream_metrics_port` (prometheus_client's own threaded server), apart from the API."""

    def __init__(self, host: str, port: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.host, self.port = host, port
        self._server: Any = None

    async def on_start(self) -> None:
        self._server, _ = start_http_server(self.port, self.host)

    async def on_stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
