"""The dashboards' only stream-tier access: read the live API (`/live/{project}/...`) for the Live page, each
answer validated against its `pravis_schemas.live_api` model so that a body of another shape is reported as
such rather than failing later on a missing key."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote

import httpx
from pravis_schemas.live_api import LiveAlerts, LiveProjects, LiveSummary, LiveTimeseries
from pravis_schemas.read_auth import ReadAuth
from pydantic import BaseModel, ValidationError

from pravis_dashboards.system_health import Live

Body = TypeVar("Body", bound=BaseModel)

REPORTED_PROBLEMS = 3
"""Validation problems named in the error; the first few locate a shape mismatch, the rest repeat it."""


class IncompatibleLiveAnswer(ValueError):
    """The live API answered a body that is not the shape of `pravis_schemas.live_api` (malformed JSON, or a
    stream tier of another version)."""


@dataclass(frozen=True)
class LiveSnapshot:
    summary: LiveSummary
    timeseries: LiveTimeseries
    alerts: LiveAlerts


def read_body(response: httpx.Response, model: type[Body]) -> Body:
    """The answer's body as `model`; an HTTP error status raises `httpx.HTTPStatusError`, another shape
    `IncompatibleLiveAnswer` naming the path and the first fields that do not fit."""
    response.raise_for_status()
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()[:REPORTED_PROBLEMS]
        )
        raise IncompatibleLiveAnswer(
            f"{response.request.url.path} is not a {model.__name__}: {problems}"
        ) from exc


class LiveApi:
    def __init__(self, base_url: str, timeout_s: float, auth: ReadAuth | None = None) -> None:
        headers = {"Authorization": auth.authorization()} if auth else {}
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, headers=headers)

    async def snapshot(self, project: str, minutes: int = 30) -> LiveSnapshot:
        """Summary of the last 5 minutes, per-minute series and firing alerts, fetched concurrently."""
        path = f"/live/{quote(project, safe='')}"
        summary, series, alerts = await asyncio.gather(
            self.client.get(f"{path}/summary", params={"window": "5m"}),
            self.client.get(f"{path}/timeseries", params={"minutes": minutes}),
            self.client.get(f"{path}/alerts"),
        )
        return LiveSnapshot(
            summary=read_body(summary, LiveSummary),
            timeseries=read_body(series, LiveTimeseries),
            alerts=read_body(alerts, LiveAlerts),
        )

    async def health_inputs(self, project: str) -> Live:
        """What the system health summary reads of a project: the last 5 minutes, the last hour (the normal
        ingest rate) and the firing alerts, fetched concurrently."""
        path = f"/live/{quote(project, safe='')}"
        recent, hour, alerts = await asyncio.gather(
            self.client.get(f"{path}/summary", params={"window": "5m"}),
            self.client.get(f"{path}/summary", params={"window": "1h"}),
            self.client.get(f"{path}/alerts"),
        )
        return Live(
            read_body(recent, LiveSummary), read_body(hour, LiveSummary), read_body(alerts, LiveAlerts)
        )

    async def projects(self) -> list[str]:
        return read_body(await self.client.get("/live/projects"), LiveProjects).projects

    async def aclose(self) -> None:
        await self.client.aclose()
