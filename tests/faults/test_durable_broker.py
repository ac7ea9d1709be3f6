"""The broker killed and restarted when its log is durable (Tansu on s3:// storage, the S3 server outliving
the broker, as a real Kafka's disks would): every event the gateway accepted must reach ClickHouse, once."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from pravis_gateway.keys import KeyStore

from tests.faults.stack import Stack
from tests.faults.test_faults import kill_broker_under_load, settle

pytestmark = pytest.mark.timeout(150)


@pytest.fixture(scope="module")
def durable_stack(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("faults-durable"), log_dir, durable=True)
    try:
        yield stack.start()
    finally:
        stack.stop()


def test_durable_broker_killed_and_restarted_loses_nothing(durable_stack: Stack) -> None:
    stack = durable_stack
    key, _ = KeyStore(stack.data_dir / "keys.json").create("faults-durable", "write")
    load, _, outage, first_503_s = kill_broker_under_load(stack, key, "durable-broker-restart")

    result = settle(
        stack,
        load,
        "broker (Tansu on s3://, durable) killed and restarted",
        outage_s=round(outage, 2),
        notes=f"first 503 after {first_503_s:.2f} s",
    )

    assert 503 in load.statuses, result
    assert result["lost"] == 0 and result["duplicates"] == 0, result
