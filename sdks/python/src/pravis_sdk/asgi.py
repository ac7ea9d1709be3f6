"""ASGI middleware (Starlette, FastAPI) emitting one `api_request` event per HTTP request.

`app.add_middleware(PravisMiddleware, client=client)`. The endpoint is the matched route's template
(`/products/{product_id}`, mount prefixes included), never the raw path, so per-endpoint metrics do not
explode into one series per id; requests no route matched are reported as `UNMATCHED_ROUTE`. With the first
request it also starts sending `resource_sample` events every `resource_interval_s` (`pravis_sdk.resources`;
`resources=False` turns them off), named `service` on this host.
"""

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from pravis_sdk.resources import RESOURCE_INTERVAL_S, ResourceSampler
from pravis_sdk.tracking import Tracker

UNMATCHED_ROUTE = "<unmatched>"
CACHE_HEADER = "x-cache"
CACHE_HIT_VALUES = ("hit", "true", "1")

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]


def cache_hit_from(value: str | None, hit_values: Iterable[str] = CACHE_HIT_VALUES) -> bool | None:
    """`True`/`False` from a cache header such as `X-Cache: HIT from cdn` (None when absent)."""
    if value is None:
        return None
    first = value.strip().split(maxsplit=1)[0].lower() if value.strip() else ""
    return first in {v.lower() for v in hit_values}


def status_error_type(status: int) -> str | None:
    """The `error_type` of a request that failed without an exception reaching the middleware."""
    return f"http_{status}" if status >= 400 else None


def route_template(scope: Scope, root_path: str) -> str:
    """The matched route's path template, with the prefixes of the mounts it sits in."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return UNMATCHED_ROUTE
    mounted = scope.get("root_path", "")[len(root_path) :]
    return mounted + template


class PravisMiddleware:
    """Time each HTTP request and emit an `api_request` event when its response completes.

    `cache_header` names the response header that tells a cache hit (`cache_hit_values`, first word,
    case-insensitive); `user_id(scope)` may return the requesting user; `exclude` lists route templates
    not to report (health checks)."""

    def __init__(
        self,
        app: ASGIApp,
        client: Tracker,
        *,
        cache_header: str = CACHE_HEADER,
        cache_hit_values: Iterable[str] = CACHE_HIT_VALUES,
        user_id: Callable[[Scope], str | None] | None = None,
        exclude: Iterable[str] = (),
        service: str = "app",
        resources: bool = True,
        resource_interval_s: float = RESOURCE_INTERVAL_S,
    ) -> None:
        self.app = app
        self.client = client
        self.cache_header = cache_header.lower().encode("latin-1")
        self.cache_hit_values = tuple(cache_hit_values)
        self.user_id = user_id
        self.exclude = frozenset(exclude)
        self.sampler = ResourceSampler(client, service) if resources else None
        self.resource_interval_s = resource_interval_s
        self._sampling: asyncio.Task | None = None

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sampler = self.sampler
        if sampler is not None:
            if self._sampling is None:
                self._sampling = asyncio.create_task(sampler.run_on_loop(self.resource_interval_s))
            sampler.started()
        start = time.perf_counter()
        root_path = scope.get("root_path", "")
        status = 500
        cache: str | None = None
        error_type: str | None = None

        async def observe(message: dict[str, Any]) -> None:
            nonlocal status, cache
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == self.cache_header:
                        cache = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, observe)
        except Exception as exc:
            error_type = type(exc).__name__
            raise
        finally:
            if sampler is not None:
                sampler.finished()
            endpoint = route_template(scope, root_path)
            if endpoint not in self.exclude:
                self.client.api_request(
                    endpoint,
                    scope.get("method", "GET"),
                    status,
                    (time.perf_counter() - start) * 1000,
                    cache_hit=cache_hit_from(cache, self.cache_hit_values),
                    error_type=error_type or status_error_type(status),
                    **self._identity(scope),
                )

    def _identity(self, scope: Scope) -> dict[str, str]:
        user = self.user_id(scope) if self.user_id else None
        return {"user_id": user} if user else {}
