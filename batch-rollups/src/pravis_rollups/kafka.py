"""The rollup worker's only Kafka access: a consumer whose offsets move only when the caller commits."""

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError
from pravis_schemas.kafka_security import kafka_client_options

from pravis_rollups.settings import Settings


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
    """Move every assigned partition whose position lies past its log end back to its first record; return
    them with (position, log end).

    A position can only pass the log end when the broker lost the log under it: an in-memory broker that
    restarted, with our position or a commit from before. Kafka answers such a fetch with OFFSET_OUT_OF_RANGE
    and the client resets (to the earliest record here); Tansu 0.6 answers it with empty fetches, so the
    consumer would wait until the new log grew past the old position and then skip everything before it."""
    assigned = list(consumer.assignment())
    if not assigned:
        return {}
    ends = await consumer.end_offsets(assigned)
    past_end = {}
    for tp in assigned:
        try:
            position = await consumer.position(tp)
        except IllegalStateError:  # taken away by a rebalance meanwhile
            continue
        if position > ends[tp]:
            past_end[tp] = (position, ends[tp])
    if past_end:
        await consumer.seek_to_beginning(*past_end)
    return past_end
