"""The ingest gateway application: lifespan wiring, health and metrics endpoints."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app

from pravis_gateway.kafka import EventPublisher
from pravis_gateway.keys import KeyStore
from pravis_gateway.null_sink import NullPublisher
from pravis_gateway.routes import events
from pravis_gateway.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.keys = KeyStore(settings.keys_path)
        app.state.publisher = NullPublisher() if settings.sink == "null" else EventPublisher(settings)
        await app.state.publisher.start()
        try:
            yield
        finally:
            await app.state.publisher.stop()

    app = FastAPI(title="Pravis ingest gateway", version="0.1.0", lifespan=lifespan)
    app.include_router(events.router)
    app.mount("/metrics", make_asgi_app())

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        kafka_ok = await request.app.state.publisher.ping()
        return JSONResponse(
            {"status": "ok" if kafka_ok else "kafka unreachable"}, status_code=200 if kafka_ok else 503
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"status": "error", "error": _first_error(exc)}, status_code=422)

    return app


def _first_error(exc: RequestValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
