"""The gateway's only Kafka access: a producer that returns once Kafka acked, and the consent feed."""

import asyncio
import contextlib
from collections.abc import Sequence

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pravis_schemas import records_by_partition, topics
from pravis_schemas.kafka_security import kafka_client_options
from pravis_schemas.messages import ConsentRecord
from pydantic import ValidationError

from pravis_gateway.consent import ConsentBook
from pravis_gateway.partitioner import partition_of
from pravis_gateway.settings import Settings

log = structlog.get_logger("pravis.gateway.kafka")


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge in time; the caller must not report the events as accepted."""


class EventPublisher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks=settings.kafka_acks if settings.kafka_acks == "all" else int(settings.kafka_acks),
            enable_idempotence=settings.kafka_enable_idempotence,
            linger_ms=settings.kafka_linger_ms,
            max_batch_size=settings.kafka_max_batch_size,
            request_timeout_ms=int(settings.kafka_ack_timeout_s * 1000),
            **kafka_client_options(settings),
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Send (key, value) records and wait until Kafka acked all of them.

        `events` records are merged into one record per partition (`records_by_partition`; several past
        `MAX_RECORD_BYTES`, which Kafka's request size allows): a batch of many users is otherwise a record
        per user, and aiokafka's cost per record made publishing such a batch several times dearer than one
        of a single user (docs/scaling.md).
        """
        try:
            if topic == topics.EVENTS:
                partitions = sorted(await self._producer.partitions_for(topic))
                count = len(partitions)
                keyed = records_by_partition(records, lambda key: partitions[partition_of(key, count)])
            else:
                keyed = [(key, None, value) for key, value in records]
            pending = [
                await self._producer.send(topic, value, key=key, partition=partition)
                for key, partition, value in keyed
            ]
            async with asyncio.timeout(self._settings.kafka_ack_timeout_s):
                await asyncio.gather(*pending)
        except (TimeoutError, KafkaError) as exc:
            raise KafkaUnavailable(str(exc) or type(exc).__name__) from exc

    async def ping(self) -> bool:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._settings.kafka_bootstrap,
            request_timeout_ms=2000,
            **kafka_client_options(self._settings),
        )
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except KafkaError:
            return False
        finally:
            await admin.close()


class ConsentFeed:
    """Keeps a ConsentBook equal to the `consent` topic: replays it from the start, then tails it.

    Every gateway process runs one, without a consumer group, so a withdrawal posted to any instance reaches
    all of them within one fetch wait (100 ms). Tansu has no compaction, so the replay reads the whole
    history; on real Kafka make the topic compacted (key = project:subject).
    """

    def __init__(self, settings: Settings, book: ConsentBook) -> None:
        self._book = book
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
            **kafka_client_options(settings),
        )
        self.caught_up = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self._consumer.start()
        await self._consumer.topics()  # metadata of every topic, so the partitions of `consent` are known
        partitions = [
            TopicPartition(topics.CONSENT, p)
            for p in self._consumer.partitions_for_topic(topics.CONSENT) or ()
        ]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        end = await self._consumer.end_offsets(partitions)
        self._task = asyncio.create_task(self._follow(partitions, end))

    async def _follow(self, partitions: list[TopicPartition], end: dict[TopicPartition, int]) -> None:
        while True:
            for records in (await self._consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    try:
                        self._book.apply(ConsentRecord.model_validate_json(record.value))
                    except ValidationError as exc:
                        log.warning("bad consent record skipped", offset=record.offset, error=str(exc))
            if not self.caught_up.is_set():
                positions = [await self._consumer.position(tp) for tp in partitions]
                if all(position >= end[tp] for position, tp in zip(positions, partitions, strict=True)):
                    self.caught_up.set()
                    log.info("consent state rebuilt", subjects=len(self._book))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
