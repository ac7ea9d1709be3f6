"""The asyncio client: same triggers and retry matrix as the thread client, delivered by a task."""

import asyncio
import time
from collections.abc import Callable

from pravis_sdk import AsyncClient, RetryPolicy

FAST_RETRY = RetryPolicy(max_retries=3, base_s=0.01, cap_s=0.05)


def make_client(fake_gateway, **options) -> AsyncClient:
    options = {"flush_interval": 60.0, "retry_policy": FAST_RETRY, **options}
    return AsyncClient("pvw_test", "http://gateway.test", transport=fake_gateway.async_transport(), **options)


async def until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Poll `condition`; the deadline only bounds a hang, it is no claim about speed."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_flush_at_triggers_a_send_without_awaiting_anything(fake_gateway) -> None:
    async with make_client(fake_gateway, flush_at=2) as client:
        client.track("custom_a")
        client.track("custom_b")
        await until(lambda: len(fake_gateway.events) == 2)


async def test_interval_flush_and_lazy_start_inside_a_running_loop(fake_gateway) -> None:
    client = make_client(fake_gateway, flush_at=100, flush_interval=0.2)
    client.track("custom_a")
    await until(lambda: len(fake_gateway.events) == 1)
    assert client.stats().accepted == 1
    await client.shutdown()


async def test_retries_honour_retry_after_then_deliver_once(fake_gateway) -> None:
    fake_gateway.script = [(503, {"Retry-After": "0.2"}), (500, {})]
    async with make_client(fake_gateway) as client:
        slept: list[float] = []
        sleep = client._sleep

        async def recording(seconds: float) -> bool:
            slept.append(seconds)
            return await sleep(seconds)

        client._sleep = recording
        event_id = client.track("custom_a")
        assert await client.flush(30)

    # Retry-After 0.2 s (plus at most 10 % jitter), then the policy's own backoff after the 500.
    assert len(slept) == 2 and 0.2 <= slept[0] <= 0.22
    assert slept[1] <= FAST_RETRY.cap_s

    assert len(fake_gateway.requests) == 3
    assert [e["event_id"] for e in fake_gateway.requests[-1]["events"]] == [event_id]
    assert client.stats().accepted == 1


async def test_track_from_another_thread_wakes_the_task(fake_gateway) -> None:
    async with make_client(fake_gateway, flush_at=3) as client:
        await asyncio.to_thread(lambda: [client.track("custom_t") for _ in range(3)])
        await until(lambda: len(fake_gateway.events) == 3)


async def test_shutdown_sends_leftovers_and_reports_undeliverable(fake_gateway) -> None:
    fake_gateway.script = [(503, {"Retry-After": "30"})]
    client = make_client(fake_gateway, flush_at=100, shutdown_timeout=0.3)
    await client.start()
    client.track("custom_a")

    await client.shutdown()

    assert client.stats().dropped_by_reason == {"shutdown": 1}


async def test_identify_and_alias_start_and_wake_the_task_like_any_event(fake_gateway) -> None:
    client = make_client(fake_gateway, flush_at=2)
    anonymous = client.anonymous_id
    client.identify("u-42", {"plan": "pro"})
    client.alias("u-old", "u-42")
    await until(lambda: len(fake_gateway.events) == 2)
    await client.shutdown()

    identify, alias = fake_gateway.events
    assert (identify["event_type"], identify["user_id"], identify["anonymous_id"]) == (
        "identify",
        "u-42",
        anonymous,
    )
    assert (alias["event_type"], alias["user_id"], alias["previous_id"]) == ("alias", "u-42", "u-old")
