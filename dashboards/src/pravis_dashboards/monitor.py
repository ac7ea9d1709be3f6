"""The dashboards' reading of the stack monitor's `/metrics` for the system health summary, shared between
requests: every scrape makes the monitor check each service and ask the broker for every group's offsets, so
pages polling at once (several viewers, the Executive and Live pages) reuse one answer for `max_age_s` instead
of each causing a scrape. One answer is kept, so the state stays the same size however many requests come."""

import asyncio
import time
from collections.abc import Callable

import httpx
import structlog

from pravis_dashboards.system_health import Monitored, read_monitor_metrics

log = structlog.get_logger()


class MonitorReader:
    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str,
        max_age_s: float,
        on_failure: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.url = f"{url.rstrip('/')}/metrics"
        self.max_age_s = max_age_s
        self.on_failure = on_failure
        self.clock = clock
        self.lock = asyncio.Lock()
        self.last: tuple[float, Monitored | None] | None = None

    async def read(self) -> Monitored | None:
        """The monitor's figures, None when it did not answer (a failure is reused like an answer, so a
        monitor that is down is not asked again by every waiting request)."""
        async with self.lock:
            if self.last is not None and self.clock() - self.last[0] < self.max_age_s:
                return self.last[1]
            monitored = await self.fetch()
            self.last = (self.clock(), monitored)
            return monitored

    async def fetch(self) -> Monitored | None:
        try:
            response = await self.client.get(self.url)
            response.raise_for_status()
            return read_monitor_metrics(response.text)
        except (httpx.HTTPError, ValueError) as exc:
            self.on_failure()
            log.warning("system health: monitor not read", error=str(exc)[:300])
            return None
