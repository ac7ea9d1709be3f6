"""The asyncio client: same triggers and retry matrix as the thread client, delivered by a task."""

import asyncio
import time

from pravis_sdk import AsyncClient, RetryPolicy

FAST_RETRY = RetryPolicy(max_retries=3, base_s=0.01, cap_s=0.05)


def make_client(fake_gateway, **options) -> AsyncClient:
    options = {"flush_interval": 60.0, "retry_policy": FAST_RETRY, **options}
    return AsyncClient("pvw_test", "http://gateway.test", transport=fake_gateway.async_transport(), **options)


async def test_flush_at_triggers_a_send_without_awaiting_anything(fake_gateway) -> None:
    async with make_client(fake_gateway, flush_at=2) as client:
        client.track("custom_a")
        client.track("custom_b")
        for _ in range(100):
            if len(fake_gateway.events) == 2:
                break
            await asyncio.sleep(0.01)
        assert len(fake_gateway.events) == 2


async def test_interval_flush_and_lazy_start_inside_a_running_loop(fake_gateway) -> None:
    client = make_client(fake_gateway, flush_at=100, flush_interval=0.2)
    client.track("custom_a")
    await asyncio.sleep(0.5)
    assert len(fake_gateway.events) == 1
    await client.shutdown()


async def test_retries_honour_retry_after_then_deliver_once(fake_gateway) -> None:
    fake_gateway.script = [(503, {"Retry-After": "0.2"}), (500, {})]
    async with make_client(fake_gateway) as client:
        event_id = client.track("custom_a")
        started = time.monotonic()
        assert await client.flush(5)
        assert time.monotonic() - started >= 0.2

    assert len(fake_gateway.requests) == 3
    assert [e["event_id"] for e in fake_gateway.requests[-1]["events"]] == [event_id]
    assert client.stats().accepted == 1


async def test_track_from_another_thread_wakes_the_task(fake_gateway) -> None:
    async with make_client(fake_gateway, flush_at=3) as client:
        await asyncio.to_thread(lambda: [client.track("custom_t") for _ in range(3)])
        for _ in range(100):
            if len(fake_gateway.events) == 3:
                break
            await asyncio.sleep(0.01)
        assert len(fake_gateway.events) == 3


async def test_shutdown_sends_leftovers_and_reports_undeliverable(fake_gateway) -> None:
    fake_gateway.script = [(503, {"Retry-After": "30"})]
    client = make_client(fake_gateway, flush_at=100, shutdown_timeout=0.3)
    await client.start()
    client.track("custom_a")

    await client.shutdown()

    assert client.stats().dropped_by_reason == {"shutdown": 1}
