"""Requests for the system health share one read of the monitor per `max_age_s` (a clock the test moves),
counted at a stand-in monitor app served through httpx's ASGI transport."""

import asyncio

import httpx
from pravis_dashboards.monitor import MonitorReader
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from .test_system_health import MONITOR_TEXT


class Monitor:
    def __init__(self) -> None:
        self.scrapes = 0
        self.answering = True

    def app(self) -> Starlette:
        async def metrics(_request: Request) -> PlainTextResponse:
            self.scrapes += 1
            return PlainTextResponse(MONITOR_TEXT, status_code=200 if self.answering else 503)

        return Starlette(routes=[Route("/metrics", metrics)])


def reader(monitor: Monitor, now: list[float], failures: list[int]) -> MonitorReader:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=monitor.app()), base_url="http://monitor")
    return MonitorReader(client, "http://monitor/", 5.0, lambda: failures.append(1), clock=lambda: now[0])


def test_concurrent_requests_share_one_scrape_until_it_is_max_age_old() -> None:
    monitor, now, failures = Monitor(), [100.0], []
    shared = reader(monitor, now, failures)

    async def scenario() -> None:
        answers = await asyncio.gather(*(shared.read() for _ in range(5)))
        assert monitor.scrapes == 1
        assert all(answer is not None and answer.up["loader"] is False for answer in answers)
        now[0] = 104.9
        await shared.read()
        assert monitor.scrapes == 1
        now[0] = 105.0
        await shared.read()
        assert monitor.scrapes == 2

    asyncio.run(scenario())
    assert failures == []


def test_a_failed_read_is_none_counted_once_and_retried_after_max_age() -> None:
    monitor, now, failures = Monitor(), [0.0], []
    monitor.answering = False
    shared = reader(monitor, now, failures)

    async def scenario() -> None:
        assert await shared.read() is None
        assert await shared.read() is None
        assert (monitor.scrapes, len(failures)) == (1, 1)
        monitor.answering = True
        now[0] = 5.0
        answer = await shared.read()
        assert answer is not None and answer.lag == {"pravis-loader": 7, "pravis-stream": 0}

    asyncio.run(scenario())
