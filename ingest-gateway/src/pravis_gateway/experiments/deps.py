"""Dependencies of the experiment routes: the definition store and its refresh task, the person resolver."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from pravis_gateway import clickhouse
from pravis_gateway.experiments.persons import PersonResolver
from pravis_gateway.experiments.store import ExperimentStore


@asynccontextmanager
async def experiments_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs inside the app's lifespan (FastAPI merges router lifespans), after `app.state.gateway` exists."""
    gateway = app.state.gateway
    settings = gateway.settings
    store = ExperimentStore(settings.clickhouse_url, settings.experiments_refresh_s)
    app.state.experiments = store
    app.state.persons = PersonResolver(
        lambda project_id, distinct_id: clickhouse.person_facts(gateway.warehouse(), project_id, distinct_id),
        settings.person_cache_ttl_s,
        settings.person_cache_ids,
    )
    async with clickhouse.reloading(store):
        yield


def get_store(request: Request) -> ExperimentStore:
    return request.app.state.experiments


StoreDep = Annotated[ExperimentStore, Depends(get_store)]


def get_persons(request: Request) -> PersonResolver:
    return request.app.state.persons


PersonsDep = Annotated[PersonResolver, Depends(get_persons)]
