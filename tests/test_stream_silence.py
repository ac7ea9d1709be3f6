"""Silence is an anomaly, end to end: a stream worker watching steady traffic that stops fires `traffic_drop`,
and resolves it when the traffic returns."""

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pravis_schemas import topics

from tests.test_stream import Stream, read_topic, short_windows


@pytest.fixture
def fresh_stream(worker_env: dict[str, str], log_dir: Path) -> Iterator[Stream]:
    """A worker of this module's own, so the silence it watches does not depend on the history (traffic,
    kill -9, restart) of `test_stream`'s worker."""
    worker = Stream(short_windows(worker_env), log_dir).start()
    try:
        yield worker
    finally:
        worker.process.stop()


def test_silence_fires_traffic_drop_and_it_resolves_when_traffic_returns(
    fresh_stream: Stream, kafka_bootstrap: str
):
    """Steady traffic (rows as the gateway writes them, straight onto `events`), then none: the buckets after
    it are observations of zero, so `traffic_drop` fires for the project, in the first buckets after the last
    event; traffic back: resolved. The deadlines only bound a hang; the claim is about bucket times."""
    project = f"silence-{secrets.token_hex(3)}"

    def traffic_row(n: int) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")  # as the gateway writes it
        return {
            "event_id": str(uuid.uuid4()),
            "event_type": "page_view",
            "timestamp": now,
            "user_id": f"u{n % 20}",
            "properties": {},
            "project_id": project,
            "received_at": now,
        }

    async def steady(until) -> float:
        """Publish 100 events a second (as many as the elapsed time calls for at each 0.1 s tick, so a slow
        tick does not make a bucket smaller) until `until()`; return the last event's time."""
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5)
        await producer.start()
        n, last, began = 0, 0.0, time.monotonic()
        try:
            while not until():
                while n < (time.monotonic() - began) * 100:
                    row = traffic_row(n)
                    await producer.send(topics.EVENTS, orjson.dumps(row), key=row["user_id"].encode())
                    n += 1
                await producer.flush()
                last = time.time()
                await asyncio.sleep(0.1)
        finally:
            await producer.stop()
        return last

    def drops(found: list[dict[str, Any]], status: str) -> list[dict[str, Any]]:
        return [
            a
            for a in found
            if a.get("project_id") == project
            and a.get("metric") == "traffic_drop"
            and a.get("status") == status
        ]

    # Start on a bucket boundary: a first, partly filled bucket would be most of a 5-bucket baseline's
    # variance and keep the (zero) silence within five standard deviations.
    time.sleep(1.0 - time.time() % 1.0)
    warm_until = time.monotonic() + 12.0  # five 1-second warm-up buckets, and a margin for a loaded machine
    last_event = asyncio.run(steady(lambda: time.monotonic() >= warm_until))
    fired = read_topic(kafka_bootstrap, topics.ALERTS, lambda found: drops(found, "firing"), timeout_s=90)
    counters = [
        line
        for line in httpx.get(fresh_stream.url + "/metrics", timeout=10).text.splitlines()
        if line.startswith(
            ("pravis_stream_events_total", "pravis_stream_skipped_total", "pravis_stream_alerts")
        )
    ]
    assert len(drops(fired, "firing")) == 1, counters
    (alert,) = drops(fired, "firing")
    # The bucket the traffic stopped in, or the first empty one after it.
    assert alert["labels"] == {} and alert["observed"] <= alert["expected"] / 2 and alert["expected"] > 5
    window_start = datetime.fromisoformat(alert["window_start"]).timestamp()
    assert window_start <= last_event + 3.0  # one of the first empty 1-second buckets fired it

    resumed = read_topic(kafka_bootstrap, topics.ALERTS, lambda found: drops(found, "resolved"), timeout_s=1)
    assert drops(resumed, "resolved") == []
    done: list[bool] = []

    async def resume_until_resolved() -> None:
        async def watch() -> None:
            await asyncio.to_thread(
                read_topic, kafka_bootstrap, topics.ALERTS, lambda found: drops(found, "resolved"), 90
            )
            done.append(True)

        watcher = asyncio.create_task(watch())
        await steady(lambda: bool(done))
        await watcher

    asyncio.run(resume_until_resolved())
    resolved = read_topic(kafka_bootstrap, topics.ALERTS, lambda found: drops(found, "resolved"))
    assert [a["alert_id"] for a in drops(resolved, "resolved")] == [alert["alert_id"]]
