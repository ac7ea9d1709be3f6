"""The broker killed and restarted when its log is durable (Tansu on s3:// storage, the S3 server outliving
the broker, as a real Kafka's disks would): events it had acked but that were not loaded when it died are
delivered by the restarted broker, and every event the gateway accepted reaches ClickHouse, once."""

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from pravis_gateway.keys import KeyStore

from tests.faults.stack import Stack
from tests.faults.test_faults import broker_in_flight, kill_broker_under_load, settle, summary

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
def durable_stack(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("faults-durable"), log_dir, durable=True)
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_durable_broker_kill_9_loses_nothing(durable_stack: Stack, fault_rng: random.Random) -> None:
    stack = durable_stack
    key, _ = KeyStore(stack.data_dir / "keys.json").create("faults-durable", "write")
    load, fault, loader_frozen = kill_broker_under_load(stack, key, "durable-broker-kill", fault_rng)

    result = settle(stack, load, "broker (Tansu on s3://, durable) kill -9, restarted", fault, "")
    pending, redelivered = broker_in_flight(load, fault, result)
    unfetched_ms = (fault.at - loader_frozen) * 1000
    result["in_flight"] = (
        f"{len(pending)} acked events not yet stored (loader frozen {unfetched_ms:.0f} ms before the kill), "
        f"{len(redelivered)} of them delivered by the restarted broker"
    )

    assert pending and redelivered, summary(result)
    assert "503" in load.outcomes, summary(result)
    assert result["lost"] == 0 and result["duplicates"] == 0, summary(result)
