"""The ingest gateway application: lifespan wiring, body limits, CORS, error answers, health and metrics.

Every answer that is not a success has the one error shape `ErrorBody`, whoever makes it: a route, FastAPI's
validation (422), Starlette's routing (404, 405 with the `Allow` the path really has), `BodyLimits` (408, 413)
or an unhandled exception (500, also counted in /metrics by route).
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse
from pravis_schemas.http_limits import BodyLimits
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from pravis_gateway import metrics
from pravis_gateway.allocator import keep_heap_top
from pravis_gateway.routes import consent, events, features, feedback, identity, surveys, user_data
from pravis_gateway.routes import experiments as experiment_admin
from pravis_gateway.routes import funnels as funnel_admin
from pravis_gateway.routes.responses import COMMON_RESPONSES, JSONBody, error
from pravis_gateway.settings import Settings
from pravis_gateway.state import Gateway


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keep_heap_top()  # here, not in __main__: every uvicorn worker process runs the lifespan
        gateway = Gateway.from_settings(settings)
        await gateway.start()
        app.state.gateway = gateway
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        title="Pravis ingest gateway",
        version="0.1.0",
        description="Event ingestion for the Pravis analytics pipeline. 200 only after Kafka acknowledged.",
        lifespan=lifespan,
        responses=COMMON_RESPONSES,
    )
    app.include_router(events.router)
    app.include_router(feedback.router)
    app.include_router(consent.router)
    app.include_router(user_data.router)
    app.include_router(identity.router)
    app.include_router(experiment_admin.router)
    app.include_router(features.router)
    app.include_router(funnel_admin.router)
    app.include_router(surveys.router)
    app.add_middleware(
        BodyLimits,
        max_body_bytes=settings.max_body_bytes,
        timeout_s=settings.body_timeout_s,
        on_refusal=lambda reason: metrics.REFUSALS.labels(reason).inc(),
    )
    # Added last, so outermost: refusals made by BodyLimits carry CORS headers a browser SDK can read.
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["X-API-Key", "Content-Type", "Content-Encoding"],
            # Browsers hide response headers from cross-origin scripts unless listed; SDKs honour Retry-After.
            expose_headers=["Retry-After"],
            max_age=3600,
        )
    if settings.gateway_metrics_port is None:
        registry = metrics_registry()

        @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
        async def prometheus_metrics() -> PlainTextResponse:
            """Prometheus exposition of this gateway's counters."""
            return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is serving."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> JSONBody:
        """Kafka is reachable and the consent state is rebuilt, so events posted now are handled right."""
        gateway = request.app.state.gateway
        if not gateway.consent_ready:
            return JSONBody({"status": "rebuilding consent state"}, status_code=503)
        kafka_ok = await gateway.publisher.ping()
        return JSONBody(
            {"status": "ok" if kafka_ok else "kafka unreachable"}, status_code=200 if kafka_ok else 503
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONBody:
        metrics.REFUSALS.labels("invalid_request").inc()
        return JSONBody({"status": "error", "error": _describe(exc)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONBody:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette's Allow names only the first route of the path; a path may have a route per method.
            headers["Allow"] = ", ".join(_allowed_methods(request.app, request.url.path))
        metrics.REFUSALS.labels(_HTTP_REASONS.get(exc.status_code, f"http_{exc.status_code}")).inc()
        return JSONBody(
            {"status": "error", "error": exc.detail}, status_code=exc.status_code, headers=headers or None
        )

    @app.exception_handler(Exception)
    async def server_error(request: Request, _exc: Exception) -> JSONBody:
        """Answered and counted here; Starlette raises the exception on, so it is logged with its trace."""
        route = request.scope.get("route")
        metrics.SERVER_ERRORS.labels(getattr(route, "path", "unmatched")).inc()
        return error(500, "internal error; it has been logged")

    return app


_HTTP_REASONS = {401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document gives the path: what clients are told, and every route is in it."""
    methods: set[str] = set()
    for template, operations in app.openapi()["paths"].items():
        if compile_path(template)[0].match(path):
            methods.update(method.upper() for method in operations)
    return sorted(methods)


def metrics_registry() -> CollectorRegistry:
    """With several uvicorn workers, the counters of all of them are summed from PROMETHEUS_MULTIPROC_DIR."""
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


def _describe(exc: RequestValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors()[:3]
    )
