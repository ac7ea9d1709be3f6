"""The rollup worker's only Kafka access: a consumer whose offsets move only when the caller commits."""

import asyncio
import contextlib

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from pravis_schemas.kafka_log_end import past_log_end
from pravis_schemas.kafka_security import kafka_client_options
from prometheus_client import Counter

from pravis_rollups.settings import Settings

log = structlog.get_logger("pravis.kafka")
LOG_END_REWINDS = Counter(
    "pravis_log_end_rewinds_total",
    "Partitions read again from their first record because the position was past the log end (the broker "
    "lost the log)",
    ["worker", "topic"],
)


def loader_consumer(settings: Settings, *topics: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.loader_group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # Whole fetched record batches are handed out (no max_records), so committed offsets land on batch
        # boundaries: Tansu 0.6 may poll empty when a fetch starts inside a record batch.
        fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_min_bytes=settings.loader_fetch_min_bytes,
        fetch_max_wait_ms=settings.loader_fetch_max_wait_ms,
        **kafka_client_options(settings),
    )


def privacy_consumer(settings: Settings, topic: str) -> AIOKafkaConsumer:
    """Deletion requests: one at a time, committed only once the request is done."""
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.privacy_group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **kafka_client_options(settings),
    )


async def rewind_past_log_end(consumer: AIOKafkaConsumer) -> dict[TopicPartition, tuple[int, int]]:
    """Move every assigned partition whose position lies past its log end (the broker lost the log:
    `pravis_schemas.kafka_log_end`) back to its first record; return them with (position, log end)."""
    assigned = list(consumer.assignment())
    if not assigned:
        return {}
    ends = await consumer.end_offsets(assigned)
    positions = {}
    for tp in assigned:
        with contextlib.suppress(IllegalStateError):  # taken away by a rebalance meanwhile
            positions[tp] = await consumer.position(tp)
    lost = past_log_end(positions, ends)
    if lost:
        await consumer.seek_to_beginning(*lost)
    return lost


async def rewind_lost_logs(consumer: AIOKafkaConsumer, worker: str) -> dict[TopicPartition, tuple[int, int]]:
    """`rewind_past_log_end`, logged and counted; a broker that cannot answer now is asked next time."""
    try:
        lost = await asyncio.wait_for(rewind_past_log_end(consumer), timeout=10)
    except (KafkaError, TimeoutError) as exc:
        log.info("log end check failed", worker=worker, error=str(exc)[:300])
        return {}
    for tp, (position, log_end) in lost.items():
        LOG_END_REWINDS.labels(worker, tp.topic).inc()
        log.warning(
            "position past the log end: the broker lost this partition's log (an in-memory broker "
            "restarted?); reading it again from its first record",
            worker=worker,
            topic=tp.topic,
            partition=tp.partition,
            position=position,
            log_end=log_end,
        )
    return lost
