"""The rollup worker's only Kafka access: a consumer whose offsets move only when the caller commits."""

from aiokafka import AIOKafkaConsumer
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
