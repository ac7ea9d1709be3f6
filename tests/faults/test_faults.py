"""Fault injection under a steady load posted through the gateway: kill -9 of the gateway and of the loader,
warehouse restart, poison and oversized records straight into the topic, broker restart. Each scenario
compares the events the gateway accepted (200) with what `events FINAL` holds; figures in docs/reliability.md.
"""

import asyncio
import contextlib
import time

import pytest
from aiokafka import AIOKafkaProducer
from pravis_local.testing import wait_for
from pravis_schemas import topics

from tests.faults.conftest import RESULTS
from tests.faults.stack import Load, Stack

pytestmark = pytest.mark.timeout(120)


def stored_of(stack: Stack, run: str, ids: list[str]) -> int:
    return stack.query(
        "SELECT count() FROM events FINAL "
        "WHERE session_id = {run:String} AND toString(event_id) IN {ids:Array(String)}",
        run=run,
        ids=ids,
    )[0][0]


def settle(stack: Stack, load: Load, scenario: str, since: int = 0, **figures) -> dict:
    """Stop the load, wait until every event accepted from the `since`-th on is stored, record the figures."""
    load.stop()
    began = time.monotonic()
    accepted = len(load.accepted)
    awaited = load.order[since:]
    with contextlib.suppress(TimeoutError):
        wait_for(
            lambda: stored_of(stack, load.run, awaited) == len(awaited), what=f"{len(awaited)} events stored"
        )
    rows, distinct = stack.stored(load.run)
    stored_accepted = stored_of(stack, load.run, sorted(load.accepted))
    result = {
        "scenario": scenario,
        "accepted": accepted,
        "stored": stored_accepted,
        "duplicates": rows - distinct,
        "lost": accepted - stored_accepted,
        "catch_up_s": round(time.monotonic() - began, 2),
        "statuses": dict(load.statuses),
        **figures,
    }
    RESULTS.append(result)
    return result


def test_gateway_kill_9(stack: Stack, fault_key: str):
    load = Load(stack.gateway_url, fault_key, "gateway-kill").start()
    load.wait_accepted(200)
    stack.gateway.kill()
    killed = time.monotonic()
    stack.start_gateway()
    outage = time.monotonic() - killed
    before = len(load.accepted)
    load.wait_accepted(before + 200)
    result = settle(stack, load, "gateway kill -9, restart", outage_s=round(outage, 2))
    assert result["lost"] == 0 and result["duplicates"] == 0, result


def test_loader_kill_9(stack: Stack, fault_key: str):
    load = Load(stack.gateway_url, fault_key, "loader-kill").start()
    load.wait_accepted(300)
    stack.loader.kill()
    killed = time.monotonic()
    load.wait_accepted(len(load.accepted) + 300)  # accepted while no loader runs
    stack.start_loader()
    result = settle(
        stack, load, "loader kill -9 mid-load, restart", outage_s=round(time.monotonic() - killed, 2)
    )
    assert result["lost"] == 0 and result["duplicates"] == 0, result


def test_warehouse_stopped_and_restarted(stack: Stack, fault_key: str):
    load = Load(stack.gateway_url, fault_key, "warehouse-restart").start()
    load.wait_accepted(200)
    stack.warehouse.stop()
    stopped = time.monotonic()
    load.wait_accepted(len(load.accepted) + 300)  # the gateway keeps accepting: Kafka holds the events
    stack.start_warehouse()
    result = settle(
        stack, load, "warehouse stopped and restarted", outage_s=round(time.monotonic() - stopped, 2)
    )
    assert result["lost"] == 0 and result["duplicates"] == 0, result


def test_poison_and_oversized_records(stack: Stack, fault_key: str):
    async def inject() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stack.bootstrap, max_request_size=8 * 1024 * 1024)
        await producer.start()
        try:
            await producer.send_and_wait(topics.EVENTS, b"\xff\xfe{not json", key=b"poison")
            big = b'{"event_id": "' + b"x" * (5 * 1024 * 1024) + b'"}'
            await producer.send_and_wait(topics.EVENTS, big, key=b"oversized")
        finally:
            await producer.stop()

    load = Load(stack.gateway_url, fault_key, "poison").start()
    load.wait_accepted(200)
    asyncio.run(inject())
    load.wait_accepted(len(load.accepted) + 200)
    injected = "SELECT count() FROM loader_rejected WHERE topic = 'events' AND key IN ('poison', 'oversized')"
    wait_for(lambda: stack.query(injected)[0][0] == 2, what="both injected records in loader_rejected")
    result = settle(
        stack, load, "poison + 5 MiB record injected into `events`", notes="both in loader_rejected"
    )
    assert result["lost"] == 0 and result["duplicates"] == 0, result


def kill_broker_under_load(stack: Stack, key: str, run: str) -> tuple[Load, int, float, float]:
    """Kill -9 the broker mid-load, restart it once the gateway answered 503, load on; returns the load, how
    many events were accepted at the kill, the outage and when (after the kill) the first 503 came."""
    load = Load(stack.gateway_url, key, run).start()
    load.wait_accepted(300)
    stack.broker.kill()
    stopped = time.monotonic()
    accepted_at_stop = len(load.accepted)
    wait_for(lambda: load.first_503_at is not None, what="a 503 from the gateway")
    time.sleep(1.0)  # a short outage, several SDK retries long
    stack.start_broker()
    outage = time.monotonic() - stopped
    load.wait_accepted(accepted_at_stop + 200)
    return load, accepted_at_stop, outage, load.first_503_at - stopped


def test_broker_stopped_and_restarted(stack: Stack, fault_key: str):
    """The embedded broker keeps records in memory: what was acked but not yet loaded when it stops is lost.
    Measured here: the gateway's answers during the outage, and the loss (expected ~ one loader batch)."""
    load, accepted_at_stop, outage, first_503_s = kill_broker_under_load(stack, fault_key, "broker-restart")
    result = settle(
        stack,
        load,
        "broker (embedded, memory) killed and restarted",
        since=accepted_at_stop,  # what was acked before the kill may be gone: wait for the rest only
        outage_s=round(outage, 2),
        notes=f"first 503 after {first_503_s:.2f} s, Retry-After {sorted(load.retry_after)}; "
        "lost = acked, not yet loaded at the kill",
    )
    assert 503 in load.statuses and load.retry_after == {"1"}, result
    assert result["duplicates"] == 0, result
    # Memory storage: the loss is bounded by what the loader had not loaded yet (its batch window).
    after = load.order[accepted_at_stop:]
    assert stored_of(stack, load.run, after) == len(after), result
    assert result["lost"] <= accepted_at_stop, result
