"""The health and metrics endpoints every batch worker serves, on its own port, beside its work loop."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Details = Callable[[], dict[str, Any]]


def ops_app(ready: asyncio.Event, details: Details | None = None) -> Starlette:
    async def healthz(_request) -> JSONResponse:
        ok = ready.is_set()
        body = {"status": "ok" if ok else "starting", **(details() if details else {})}
        return JSONResponse(body, status_code=200 if ok else 503)

    async def metrics(_request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])


async def run_with_ops(
    work: Awaitable[None], ready: asyncio.Event, host: str, port: int, details: Details | None = None
) -> None:
    """Serve /healthz (200 once `ready` is set, plus `details`) and /metrics while `work` runs."""
    server = uvicorn.Server(
        uvicorn.Config(ops_app(ready, details), host=host, port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    try:
        await work
    finally:
        server.should_exit = True
        await serving
