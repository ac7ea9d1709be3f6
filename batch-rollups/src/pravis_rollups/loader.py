"""Loader: consumes the `events` topic and inserts into ClickHouse, committing offsets only after the insert.

A crash between insert and commit makes Kafka redeliver the batch; the events table's ReplacingMergeTree on
event_id absorbs those copies, so delivery is at-least-once and counting stays exactly-once (with FINAL).
"""

import asyncio
import contextlib
import time

import structlog
import uvicorn
from aiokafka import AIOKafkaConsumer
from clickhouse_connect.driver.client import Client
from pravis_schemas import topics
from prometheus_client import Counter, make_asgi_app
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from tenacity import AsyncRetrying, wait_exponential

from pravis_rollups import clickhouse
from pravis_rollups.kafka import events_consumer
from pravis_rollups.settings import Settings, settings

log = structlog.get_logger("pravis.loader")
ROWS_LOADED = Counter("pravis_loader_rows_total", "Rows inserted into ClickHouse", ["table"])
INSERT_FAILURES = Counter(
    "pravis_loader_insert_failures_total", "Failed insert attempts (retried)", ["table"]
)


class Loader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = asyncio.Event()

    def _retry_policy(self, what: str) -> dict:
        def before_sleep(state) -> None:
            if what == "insert":
                INSERT_FAILURES.labels("events").inc()
            log.warning(
                f"{what} failed, retrying", attempt=state.attempt_number, error=str(state.outcome.exception())
            )

        return {
            "wait": wait_exponential(multiplier=0.2, max=self.settings.loader_retry_max_seconds),
            "before_sleep": before_sleep,
        }

    async def run(self) -> None:
        async for attempt in AsyncRetrying(**self._retry_policy("migration")):
            with attempt:
                applied = await asyncio.to_thread(clickhouse.migrate, self.settings.clickhouse_url)
        log.info("migrations applied", applied=applied)
        client = await asyncio.to_thread(clickhouse.connect, self.settings.clickhouse_url)
        consumer = events_consumer(self.settings, topics.EVENTS)
        await consumer.start()
        self.ready.set()
        log.info("loader started", topic=topics.EVENTS, group=self.settings.loader_group_id)
        try:
            while True:
                batch = await self._next_batch(consumer)
                if batch:
                    await self._insert(client, batch)
                    await consumer.commit()
                    ROWS_LOADED.labels("events").inc(len(batch))
                    log.info("batch loaded", table="events", rows=len(batch))
        finally:
            await consumer.stop()
            client.close()

    async def _next_batch(self, consumer: AIOKafkaConsumer) -> list[bytes]:
        rows: list[bytes] = []
        deadline = time.monotonic() + self.settings.loader_batch_seconds
        while len(rows) < self.settings.loader_batch_rows:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            fetched = await consumer.getmany(timeout_ms=remaining_ms)
            for records in fetched.values():
                rows.extend(record.value for record in records if record.value)
        return rows

    async def _insert(self, client: Client, rows: list[bytes]) -> None:
        # ClickHouse down or overloaded: keep the batch and the uncommitted offsets, back off, try again.
        async for attempt in AsyncRetrying(**self._retry_policy("insert")):
            with attempt:
                await asyncio.to_thread(clickhouse.insert_json_rows, client, "events", rows)


def ops_app(loader: Loader) -> Starlette:
    async def healthz(_request) -> JSONResponse:
        ready = loader.ready.is_set()
        return JSONResponse({"status": "ok" if ready else "starting"}, status_code=200 if ready else 503)

    return Starlette(routes=[Route("/healthz", healthz), Mount("/metrics", make_asgi_app())])


async def serve(settings: Settings) -> None:
    loader = Loader(settings)
    server = uvicorn.Server(
        uvicorn.Config(
            ops_app(loader),
            host=settings.loader_health_host,
            port=settings.loader_health_port,
            log_level="warning",
        )
    )
    ops = asyncio.create_task(server.serve())
    try:
        await loader.run()
    finally:
        server.should_exit = True
        await ops


def main() -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
