"""Dependencies of the experiment routes: the definition store, and the secret key admin endpoints need."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Request

from pravis_gateway.deps import GatewayDep
from pravis_gateway.experiments.store import ExperimentStore
from pravis_gateway.keys import ApiKey


@asynccontextmanager
async def experiments_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's lifespan (FastAPI merges router lifespans), after `app.state.gateway` exists."""
    settings = app.state.gateway.settings
    store = ExperimentStore(settings.clickhouse_url, settings.experiments_refresh_s)
    app.state.experiments = store
    task = asyncio.create_task(store.refresh_forever())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        store.close()


def get_store(request: Request) -> ExperimentStore:
    return request.app.state.experiments


StoreDep = Annotated[ExperimentStore, Depends(get_store)]


def secret_key(
    gateway: GatewayDep,
    x_api_key: Annotated[str | None, Header(description="Project secret key (pvs_...)")] = None,
) -> ApiKey:
    if not x_api_key:
        raise HTTPException(401, "missing API key: send a secret key in the X-API-Key header")
    found = gateway.keys.verify(x_api_key, "secret")
    if found is None:
        raise HTTPException(401, "unknown or revoked secret key (write keys cannot manage experiments)")
    return found


SecretKey = Annotated[ApiKey, Depends(secret_key)]
