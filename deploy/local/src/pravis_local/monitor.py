"""The stack monitor, `python -m pravis_local.monitor [--host H] [--port P]`: consumer lag per group and
partition, the broker's and warehouse's memory and disk, and every service's health, on a Prometheus /metrics.

A process of its own rather than figures each worker exports about itself: lag is read from the broker, so it
stays true when the consumer it measures is stuck or dead (the loader retrying a failing insert fetches
nothing, and a dead one exports nothing), which is when it matters; Tansu exports no metrics (only OTLP
traces) and cannot report its own memory; and one place sees the process table of the embedded stack. Figures
are collected on each scrape. Between scrapes one task runs: every `PRAVIS_RESOURCE_REPORT_S` it turns the
CPU, memory, descriptors and threads of every service's processes (the monitor's own too) into
`resource_sample` events for the resource panels (pravis_local.resource_report). Off the embedded stack
(compose, Kubernetes) the lag part works against any Kafka; memory there comes from the platform (cAdvisor,
node exporter)."""

import argparse
import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import structlog
import uvicorn
from pravis_rollups import clickhouse
from pravis_schemas.logs import configure_logging
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pravis_local.resource_report import ResourceReporter
from pravis_local.settings import Settings, settings
from pravis_local.stack import stack_ports
from pravis_local.status import consumer_lag, health, health_urls, process_figures

log = structlog.get_logger("pravis.monitor")
# A scrape must answer within Prometheus' default 10 s timeout even when the broker does not.
COLLECT_TIMEOUT_S = 5.0


class StackMetrics:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.lag = Gauge(
            "pravis_consumer_lag",
            "Records in the partition after the group's committed offset",
            ["group", "topic", "partition"],
            registry=self.registry,
        )
        self.committed = Gauge(
            "pravis_consumer_committed_offset",
            "The group's committed offset",
            ["group", "topic", "partition"],
            registry=self.registry,
        )
        self.resident = Gauge(
            "pravis_service_resident_memory_bytes",
            "Resident memory of the local process serving the service",
            ["service"],
            registry=self.registry,
        )
        self.disk = Gauge(
            "pravis_service_disk_bytes",
            "Bytes of the service's data on disk",
            ["service"],
            registry=self.registry,
        )
        self.up = Gauge("pravis_service_up", "1 when the service's health check passes", ["service"],
                        registry=self.registry)  # fmt: skip
        self.collect_errors = Gauge(
            "pravis_monitor_collect_failed",
            "1 when the last scrape could not read that part (lag: broker unreachable)",
            ["part"],
            registry=self.registry,
        )
        self.collect_seconds = Gauge(
            "pravis_monitor_collect_seconds", "Time the last scrape took to collect", registry=self.registry
        )

    async def collect(self) -> None:
        began = time.monotonic()
        bootstrap = f"{self.settings.host}:{self.settings.broker_port}"
        checks = await health(health_urls(self.settings))
        for check in checks:
            self.up.labels(check.service).set(int(check.ok))
        try:
            async with asyncio.timeout(COLLECT_TIMEOUT_S):
                lags = await consumer_lag(bootstrap)
        except Exception as exc:
            log.warning("consumer lag not collected", error=repr(exc)[:200])
            self.collect_errors.labels("lag").set(1)
        else:
            self.collect_errors.labels("lag").set(0)
            # Cleared first: a group or partition that is gone must not keep exporting its last value.
            self.lag.clear()
            self.committed.clear()
            for item in lags:
                labels = (item.group, item.topic, str(item.partition))
                self.lag.labels(*labels).set(item.lag)
                self.committed.labels(*labels).set(item.committed)
        self.resident.clear()
        self.disk.clear()
        for figures in await asyncio.to_thread(process_figures, self.settings):
            if figures.rss_bytes is not None:
                self.resident.labels(figures.service).set(figures.rss_bytes)
            if figures.disk_bytes is not None:
                self.disk.labels(figures.service).set(figures.disk_bytes)
        self.collect_seconds.set(time.monotonic() - began)


async def report_resources(settings: Settings, reporter: ResourceReporter) -> None:
    """Every `resource_report_s`, one sample per running service into `events` (a failed round is logged
    and the next one tries again)."""
    while True:
        await asyncio.sleep(settings.resource_report_s)
        rows = reporter.rows(await asyncio.to_thread(reporter.read, time.time()))
        if rows:
            try:
                await asyncio.to_thread(_insert, settings.warehouse_url(), rows)
            except Exception as exc:
                log.warning("resource samples not written", error=repr(exc)[:200])


def _insert(url: str, rows: list[bytes]) -> None:
    with clickhouse.connect(url) as client:
        clickhouse.insert_json_rows(client, "events", rows)


def create_app(settings: Settings) -> Starlette:
    metrics = StackMetrics(settings)
    lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if settings.resource_report_s <= 0:
            yield
            return
        reporter = ResourceReporter(stack_ports(settings), settings.resource_project)
        task = asyncio.create_task(report_resources(settings, reporter))
        yield
        task.cancel()

    async def scrape(_request: Request) -> Response:
        async with lock:  # two scrapes at once would clear each other's labels half-way
            await metrics.collect()
            body = generate_latest(metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/metrics", scrape), Route("/healthz", healthz)], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser("python -m pravis_local.monitor", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.monitor_port)
    args = parser.parse_args(argv)
    configure_logging()
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
