"""The embedded stack's runner against a kill -9 of the in-memory broker: the stream worker, whose changelogs
and internal topics went with the broker, is stopped and started again with it (`restart_with`), and counts
every event published after the restart exactly once. Before, it outlived the broker and counted nothing
more (it kept its positions past the new, empty log, where Tansu answers fetches empty), and a worker started
after it had written into the new broker hung in its changelog recovery.

Runs the real `pravis up` service definitions (`pravis_local.stack.services`) for the broker and the stream
worker only, on free ports; events are produced to `events` the way the gateway publishes them."""

import asyncio
import dataclasses
import os
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pravis_local.runner import Runner
from pravis_local.settings import Settings
from pravis_local.stack import services
from pravis_schemas import topics

from tests.support.services import eventually, free_port

pytestmark = pytest.mark.timeout(240)
PROJECT = "broker-restart"


def gateway_row() -> bytes:
    """One `events` record as the gateway writes it: an enriched row, one per line."""
    now = datetime.now(UTC).isoformat()
    row = {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "timestamp": now,
        "received_at": now,
        "project_id": PROJECT,
        "anonymous_id": f"anon-{uuid.uuid4().hex[:6]}",
        "session_id": "s-broker-restart",
        "page_url": "https://shop.example/",
        "properties": {},
    }
    return orjson.dumps(row)


async def publish(bootstrap: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all")
    await producer.start()
    try:
        for _ in range(count):
            await producer.send(topics.EVENTS, gateway_row(), key=uuid.uuid4().bytes)
        await producer.flush()
    finally:
        await producer.stop()


async def live_total(url: str) -> int | None:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            body = (await client.get(f"{url}/live/{PROJECT}/summary", params={"window": "1h"})).json()
        return body["events"]["total"]
    except (httpx.HTTPError, KeyError, ValueError):
        return None


async def test_the_stream_worker_restarts_with_the_in_memory_broker(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        broker_port=free_port(),
        stream_web_port=free_port(),
        events_partitions=3,
    )
    assert settings.broker_storage.startswith("memory")
    by_name = {service.name: service for service in services(settings)}
    stream_service = dataclasses.replace(
        by_name["stream"], env={**by_name["stream"].env, "PRAVIS_STREAM_PERSIST_INTERVAL_S": "0.5"}
    )
    runner = Runner([by_name["broker"], stream_service], max_backoff_s=1.0)
    bootstrap = f"{settings.host}:{settings.broker_port}"
    stream_url = f"http://{settings.host}:{settings.stream_web_port}"
    await runner.start()
    try:
        await publish(bootstrap, 120)
        await eventually(
            lambda: equals(live_total(stream_url), 120), 90, "the 120 events before the kill counted"
        )
        broker_pid, stream_pid = runner.pid("broker"), runner.pid("stream")
        assert broker_pid and stream_pid

        os.kill(broker_pid, signal.SIGKILL)

        async def both_back() -> bool:
            broker, stream = runner.pid("broker"), runner.pid("stream")
            return (
                bool(broker and stream and broker != broker_pid and stream != stream_pid)
                and (await live_total(stream_url)) is not None
            )

        await eventually(both_back, 90, "broker and stream worker running again")
        # The broker lost every record, so the live counters start again from the restart (documented).
        await publish(bootstrap, 80)
        await eventually(
            lambda: equals(live_total(stream_url), 80), 90, "the 80 events after the restart counted"
        )
        await asyncio.sleep(2 * 0.5 + 1)  # a persist interval and a fetch more: nothing counted twice
        assert await live_total(stream_url) == 80
    finally:
        await runner.stop(timeout_s=10)


async def equals(total, expected: int) -> bool:
    return (await total) == expected
