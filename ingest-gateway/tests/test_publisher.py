"""`EventPublisher.publish` on the embedded broker: each row once, on its key's partition, in order."""

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2
from pravis_gateway.kafka import EventPublisher
from pravis_gateway.settings import Settings
from pravis_schemas import rows_of_record


async def read_rows(bootstrap: str, topic: str, prefix: bytes) -> list[tuple[int, bytes | None, bytes]]:
    """(partition, record key, row) of every row starting with `prefix`, in each partition's order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        found: list[tuple[int, bytes | None, bytes]] = []
        async with asyncio.timeout(30):
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                    for r in records:
                        found += [(tp.partition, r.key, row) for row in rows_of_record(r.value)]
        return [row for row in found if row[2].startswith(prefix)]
    finally:
        await consumer.stop()


async def publish_and_read(bootstrap: str, records: list[tuple[bytes, bytes]], prefix: bytes):
    publisher = EventPublisher(Settings(kafka_bootstrap=bootstrap))
    await publisher.start()
    try:
        await publisher.publish("events", records)
    finally:
        await publisher.stop()
    return await read_rows(bootstrap, "events", prefix)


def test_rows_land_once_each_on_their_keys_partition_in_posted_order(kafka_bootstrap: str) -> None:
    prefix = f"pub-{uuid.uuid4().hex[:8]}-".encode()
    keys = [prefix + str(n).encode() for n in range(40)]
    # Some keys get several records; a partition's padded records together outgrow the producer's batch size
    # (and stay under its 1 MiB request size when all land on one partition).
    padding = 70_000
    records = [
        (key, f"{key.decode()}#{seq}".encode() + b" " * (padding if n % 7 == 0 else 0))
        for n, key in enumerate(keys)
        for seq in range(1 + n % 3)
    ]

    found = asyncio.run(publish_and_read(kafka_bootstrap, records, prefix))

    partitions = 3  # the embedded broker's `events` topic in the tests (tests/support/services.py)
    expected_partition = {key: (murmur2(key) & 0x7FFFFFFF) % partitions for key in keys}  # Kafka's default
    assert sorted(row.rstrip() for _, _, row in found) == sorted(v.rstrip() for _, v in records)
    for n, key in enumerate(keys):
        mine = [(p, k, row.rstrip()) for p, k, row in found if row.split(b"#")[0] == key]
        assert {p for p, _, _ in mine} == {expected_partition[key]}, key
        assert [row for _, _, row in mine] == [f"{key.decode()}#{seq}".encode() for seq in range(1 + n % 3)]
        # A record keeps its key only when it holds rows of that key alone.
        assert {k for _, k, _ in mine} <= {key, None}
