"""`EventPublisher.publish` on the embedded broker: each record once, on its key's partition, in order."""

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.partitioner import murmur2
from pravis_gateway.kafka import EventPublisher
from pravis_gateway.settings import Settings


async def read_by_key(bootstrap: str, topic: str, prefix: bytes) -> dict[bytes, list[tuple[int, bytes]]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        found: dict[bytes, list[tuple[int, bytes]]] = {}
        async with asyncio.timeout(30):
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                    for r in records:
                        if r.key and r.key.startswith(prefix):
                            found.setdefault(r.key, []).append((tp.partition, r.value))
        return found
    finally:
        await consumer.stop()


async def publish_and_read(bootstrap: str, records: list[tuple[bytes, bytes]], prefix: bytes):
    publisher = EventPublisher(Settings(kafka_bootstrap=bootstrap))
    await publisher.start()
    try:
        await publisher.publish("events", records)
    finally:
        await publisher.stop()
    return await read_by_key(bootstrap, "events", prefix)


def test_records_land_once_each_on_their_keys_partition_in_posted_order(kafka_bootstrap: str) -> None:
    prefix = f"pub-{uuid.uuid4().hex[:8]}-".encode()
    keys = [prefix + str(n).encode() for n in range(40)]
    # Some keys get several records, some records are larger than the producer's 16 KiB batch size.
    records = [
        (key, f"{key.decode()}#{seq}".encode() + b" " * (20_000 if n % 7 == 0 else 0))
        for n, key in enumerate(keys)
        for seq in range(1 + n % 3)
    ]

    found = asyncio.run(publish_and_read(kafka_bootstrap, records, prefix))

    partitions = 3  # the embedded broker's `events` topic in the tests (tests/support/services.py)
    assert sorted(found) == sorted(keys)
    for n, key in enumerate(keys):
        expected_partition = (murmur2(key) & 0x7FFFFFFF) % partitions  # Kafka's default partitioner
        assert {p for p, _ in found[key]} == {expected_partition}, key
        assert [v.rstrip() for _, v in found[key]] == [
            f"{key.decode()}#{seq}".encode() for seq in range(1 + n % 3)
        ]
