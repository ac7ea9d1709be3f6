"""The ingest gateway application: lifespan wiring, CORS, health and metrics endpoints."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from pravis_gateway.routes import consent, events, features, feedback, user_data
from pravis_gateway.routes import experiments as experiment_admin
from pravis_gateway.routes.responses import JSONBody
from pravis_gateway.settings import Settings
from pravis_gateway.state import Gateway


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
    )
    app.include_router(events.router)
    app.include_router(feedback.router)
    app.include_router(consent.router)
    app.include_router(user_data.router)
    app.include_router(experiment_admin.router)
    app.include_router(features.router)
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
        return JSONBody({"status": "error", "error": _describe(exc)}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONBody:
        return JSONBody(
            {"status": "error", "error": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    return app


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
