"""The dashboards' only stream-tier access: read the live API (`/live/{project}/...`) for the Live page."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx
from pravis_schemas.read_auth import ReadAuth


class LiveApi:
    def __init__(self, base_url: str, timeout_s: float, auth: ReadAuth | None = None) -> None:
        headers = {"Authorization": auth.authorization()} if auth else {}
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s, headers=headers)

    async def snapshot(self, project: str, minutes: int = 30) -> dict[str, Any]:
        """Summary of the last 5 minutes, per-minute series and firing alerts, fetched concurrently."""
        path = f"/live/{quote(project, safe='')}"
        summary, series, alerts = await asyncio.gather(
            self.client.get(f"{path}/summary", params={"window": "5m"}),
            self.client.get(f"{path}/timeseries", params={"minutes": minutes}),
            self.client.get(f"{path}/alerts"),
        )
        for response in (summary, series, alerts):
            response.raise_for_status()
        return {"summary": summary.json(), "timeseries": series.json(), "alerts": alerts.json()}

    async def projects(self) -> list[str]:
        response = await self.client.get("/live/projects")
        response.raise_for_status()
        return list(response.json().get("projects", []))

    async def aclose(self) -> None:
        await self.client.aclose()
