"""WSGI middleware (Flask and other WSGI apps) emitting one `api_request` event per request.

Plain WSGI has no routing, so the route template comes from `environ["pravis.route"]`, which
`instrument_flask(app, client)` fills from Flask's `request.url_rule`; other frameworks pass
`route=lambda environ: ...`. Without either the request is reported as `UNMATCHED_ROUTE`, never by its raw
path. The event is emitted when the server closes the response, so `duration_ms` covers streaming it. With
the first request a daemon thread starts sending `resource_sample` events (`pravis_sdk.resources`;
`resources=False` turns them off).
"""

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from pravis_sdk.asgi import CACHE_HEADER, CACHE_HIT_VALUES, UNMATCHED_ROUTE, cache_hit_from, status_error_type
from pravis_sdk.resources import RESOURCE_INTERVAL_S, ResourceSampler
from pravis_sdk.tracking import Tracker

ROUTE_KEY = "pravis.route"
ERROR_KEY = "pravis.error_type"
"""Set by framework hooks when the app turned an exception into an error response itself."""
Environ = dict[str, Any]
WSGIApp = Callable[[Environ, Callable], Iterable[bytes]]


class PravisWSGIMiddleware:
    def __init__(
        self,
        app: WSGIApp,
        client: Tracker,
        *,
        cache_header: str = CACHE_HEADER,
        cache_hit_values: Iterable[str] = CACHE_HIT_VALUES,
        route: Callable[[Environ], str | None] | None = None,
        user_id: Callable[[Environ], str | None] | None = None,
        exclude: Iterable[str] = (),
        service: str = "app",
        resources: bool = True,
        resource_interval_s: float = RESOURCE_INTERVAL_S,
    ) -> None:
        self.app = app
        self.client = client
        self.cache_header = cache_header.lower()
        self.cache_hit_values = tuple(cache_hit_values)
        self.route = route
        self.user_id = user_id
        self.exclude = frozenset(exclude)
        self.sampler = ResourceSampler(client, service) if resources else None
        self.resource_interval_s = resource_interval_s
        self._sampling: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def __call__(self, environ: Environ, start_response: Callable) -> Iterable[bytes]:
        sampler = self.sampler
        if sampler is not None:
            if self._sampling is None:
                with self._start_lock:
                    if self._sampling is None:
                        self._sampling = sampler.start_thread(self.resource_interval_s)
            sampler.started()
        start = time.perf_counter()
        seen: dict[str, Any] = {"status": 500, "cache": None}

        def observe(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            seen["status"] = int(status.split(" ", 1)[0])
            for name, value in headers:
                if name.lower() == self.cache_header:
                    seen["cache"] = value
            return start_response(status, headers, exc_info)

        def emit(error_type: str | None) -> None:
            if sampler is not None:
                sampler.finished()
            endpoint = self._endpoint(environ)
            if endpoint in self.exclude:
                return
            user = self.user_id(environ) if self.user_id else None
            self.client.api_request(
                endpoint,
                environ.get("REQUEST_METHOD", "GET"),
                seen["status"],
                (time.perf_counter() - start) * 1000,
                cache_hit=cache_hit_from(seen["cache"], self.cache_hit_values),
                error_type=error_type or environ.get(ERROR_KEY) or status_error_type(seen["status"]),
                **({"user_id": user} if user else {}),
            )

        try:
            body = self.app(environ, observe)
        except Exception as exc:
            emit(type(exc).__name__)
            raise
        return _Closing(body, emit)

    def _endpoint(self, environ: Environ) -> str:
        return (self.route(environ) if self.route else None) or environ.get(ROUTE_KEY) or UNMATCHED_ROUTE


class _Closing:
    """The app's response iterable; reports the request when the server closes it (PEP 3333)."""

    def __init__(self, body: Iterable[bytes], emit: Callable[[str | None], None]) -> None:
        self._body = body
        self._emit = emit
        self._error: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except Exception as exc:
            self._error = type(exc).__name__
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._emit(self._error)


def instrument_flask(app: Any, client: Tracker, **options: Any) -> None:
    """Wrap a Flask app's WSGI callable; record each request's `url_rule` as its route template and the
    class of an exception Flask turned into a 500 as its `error_type`."""
    from flask import got_request_exception, request

    @app.before_request
    def _record_route() -> None:
        if request.url_rule is not None:
            request.environ[ROUTE_KEY] = request.url_rule.rule

    def _record_error(sender: Any, exception: BaseException, **extra: Any) -> None:
        request.environ[ERROR_KEY] = type(exception).__name__

    got_request_exception.connect(_record_error, app, weak=False)

    app.wsgi_app = PravisWSGIMiddleware(app.wsgi_app, client, **options)
