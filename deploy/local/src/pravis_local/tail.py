"""`pravis topics tail`: print a topic's records as they arrive, or from the beginning, decoded.

Partitions are assigned directly, without a consumer group: reading starts at once (a group join takes ~23 s
on Tansu 0.6, see docs/scaling.md) and nothing is committed, so tailing never moves a worker's offsets.
Records of the `events` topic hold several events, one JSON object per line (`pravis_schemas.rows_of_record`);
each event is printed on its own line. Other topics hold one JSON message per record."""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pravis_schemas import rows_of_record, topics


@dataclass(frozen=True)
class TailedRow:
    partition: int
    offset: int
    key: str | None
    text: str


def decode(topic: str, value: bytes | None) -> list[str]:
    if value is None:
        return ["<tombstone>"]
    rows = rows_of_record(value) if topic == topics.EVENTS else [value]
    return [row.decode(errors="replace") for row in rows]


async def tail(
    bootstrap: str,
    topic: str,
    *,
    partition: int | None = None,
    from_beginning: bool = False,
    follow: bool = True,
    grep: str | None = None,
    **options: Any,
) -> AsyncIterator[TailedRow]:
    """Rows of `topic` (one partition or all); without `follow`, stop at the end offsets seen at the start."""
    pattern = re.compile(grep) if grep else None
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        await consumer.topics()  # loads every topic's metadata, so partitions_for_topic knows this one
        known = consumer.partitions_for_topic(topic)
        if not known:
            raise LookupError(f"no topic {topic!r} on {bootstrap}")
        if partition is not None and partition not in known:
            raise LookupError(f"topic {topic!r} has partitions {sorted(known)}, not {partition}")
        assigned = [TopicPartition(topic, p) for p in sorted(known) if partition in (None, p)]
        consumer.assign(assigned)
        if from_beginning:
            await consumer.seek_to_beginning(*assigned)
        else:
            await consumer.seek_to_end(*assigned)
        ends = await consumer.end_offsets(assigned)
        while True:
            if not follow and all([await consumer.position(tp) >= ends[tp] for tp in assigned]):
                return
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    if not follow and record.offset >= ends[tp]:
                        continue
                    key = record.key.decode(errors="replace") if record.key is not None else None
                    for text in decode(topic, record.value):
                        if pattern is None or pattern.search(text):
                            yield TailedRow(tp.partition, record.offset, key, text)
    finally:
        await consumer.stop()
