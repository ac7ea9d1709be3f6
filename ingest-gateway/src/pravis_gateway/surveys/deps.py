"""Dependencies of the survey routes: the store and its refresh task (the book itself lives in the gateway's
policies, which the ingest path checks answers with)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from pravis_gateway.clickhouse import reloading
from pravis_gateway.surveys.store import SurveyStore


@asynccontextmanager
async def surveys_lifespan(app: FastAPI) -> AsyncIterator[None]:
    gateway = app.state.gateway
    store = SurveyStore(
        gateway.settings.clickhouse_url, gateway.settings.surveys_refresh_s, gateway.policies.surveys
    )
    app.state.surveys = store
    async with reloading(store):
        yield


def get_survey_store(request: Request) -> SurveyStore:
    return request.app.state.surveys


SurveyStoreDep = Annotated[SurveyStore, Depends(get_survey_store)]
