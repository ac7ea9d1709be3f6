"""The worker's own Kafka access besides Faust: the `events` reader of the hot path, the silences reader.

Why not a Faust agent on `events`: measured on the development machine (2 cores, Tansu 0.6), a Faust agent
costs ~70 µs per record even with `stream.take(2000)`, raw bytes and a 16 MiB fetch (13.9k records/s per
worker, CPU-bound; with Faust's default 1 MiB fetch it was 7-9k/s). A record holds the events of one key of
one posted batch: a browser batch is one record, but a server batch of many users is one record per event,
and the gateway publishes 40k+ events/s. An aiokafka consumer with `getmany` and the aggregation loop of
`partition_state` costs ~3 µs per event (`python -m bench.stream`: ~150k single-event records/s with one
worker).
So the hot path reads `events` here, on Faust's event loop, and Faust keeps what it does well: group
membership and partition assignment, the changelog tables that make restarts exact, the keyed detector
agent, the web server.

The reader has no consumer group of its own: it is assigned exactly the partitions whose `live` table
partitions Faust assigned to this worker (co-partitioned: same partition count), and positions come from the
table's cursors, not from committed offsets.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import IllegalStateError
from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT
from pravis_schemas import topics
from pravis_schemas.kafka_security import kafka_client_options, kafka_ssl_context
from pravis_schemas.silences import Silence
from pydantic import ValidationError

from pravis_stream.alert_sinks import SilenceBook
from pravis_stream.settings import Settings

log = structlog.get_logger("pravis_stream.kafka")


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """The same SASL/TLS options as the aiokafka clients, in the form Faust's `broker_credentials` takes."""
    protocol = settings.kafka_security_protocol
    if protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # checked by the settings validator
        return SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password.get_secret_value(),
            ssl_context=kafka_ssl_context(settings),
            mechanism=settings.kafka_sasl_mechanism,
        )
    if protocol == "SSL":
        return SSLCredentials(kafka_ssl_context(settings))
    return None


async def partition_count(bootstrap: str, topic: str, **options: Any) -> int:
    """`options`: `kafka_client_options(settings)` (SASL/TLS)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000, **options)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if description.get("error_code") or not description["partitions"]:
        raise RuntimeError(f"topic {topic!r} is missing on {bootstrap}: create it before starting the worker")
    return len(description["partitions"])


def groupless_consumer(settings: Settings, **fetch_options: Any) -> AIOKafkaConsumer:
    """A consumer without a group that reads the partitions it is assigned from the earliest record on."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.stream_fetch_max_wait_ms,
        fetch_min_bytes=settings.stream_fetch_min_bytes,
        **fetch_options,
        **kafka_client_options(settings),
    )


class EventsReader:
    def __init__(self, settings: Settings, topic: str) -> None:
        self._topic, self._settings = topic, settings
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: Mapping[int, int | None] | None = None
        self.partitions: frozenset[int] = frozenset()

    async def start(self) -> None:
        """Connect (inside the running loop, as aiokafka requires)."""
        settings = self._settings
        self._consumer = groupless_consumer(
            settings,
            # Whole fetched record batches are handed out (no max_records): positions, and so the persisted
            # cursors, land on batch boundaries. Tansu 0.6 may poll empty when a fetch starts inside a batch.
            fetch_max_bytes=settings.stream_fetch_max_bytes,
            max_partition_fetch_bytes=settings.stream_fetch_max_bytes,
        )
        await self._consumer.start()
        if self._pending is not None:
            await self.assign(self._pending)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("EventsReader.start() was not awaited")
        return self._consumer

    async def assign(self, positions: Mapping[int, int | None]) -> None:
        """Read exactly these partitions, each from its position (None: from the earliest record). Before
        `start()` (Faust may finish recovery first) the assignment waits for it."""
        if self._consumer is None:
            self._pending = dict(positions)
            return
        tps = {p: TopicPartition(self._topic, p) for p in positions}
        self.consumer.assign(list(tps.values()))
        for p, position in positions.items():
            if position is None:
                await self.consumer.seek_to_beginning(tps[p])
            else:
                self.consumer.seek(tps[p], position)
        self.partitions = frozenset(positions)

    async def poll(self) -> Iterable[tuple[int, list[ConsumerRecord]]]:
        batches = await self.consumer.getmany(timeout_ms=self._settings.stream_poll_timeout_ms)
        return ((tp.partition, records) for tp, records in batches.items() if tp.partition in self.partitions)

    async def lag(self) -> dict[int, int]:
        """Records not yet read, per assigned partition. A rebalance may take partitions away while this
        awaits the broker: those are left out rather than crashing the worker."""
        tps = [TopicPartition(self._topic, p) for p in self.partitions]
        if not tps:
            return {}
        ends = await self.consumer.end_offsets(tps)
        found = {}
        for tp in tps:
            try:
                found[tp.partition] = max(0, ends[tp] - await self.consumer.position(tp))
            except IllegalStateError:
                continue
        return found


class SilencesReader:
    """Reads the whole `alerts.silences` topic into the worker's `SilenceBook`, then follows it: every worker
    sees every silence (no consumer group), and a restarted one reads them all again."""

    def __init__(self, settings: Settings, book: SilenceBook) -> None:
        self._settings, self.book = settings, book
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        settings = self._settings
        self._consumer = groupless_consumer(settings)
        count = await partition_count(
            settings.kafka_bootstrap, topics.SILENCES, **kafka_client_options(settings)
        )
        await self._consumer.start()
        self._consumer.assign([TopicPartition(topics.SILENCES, p) for p in range(count)])

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def follow(self) -> None:
        assert self._consumer is not None, "SilencesReader.start() was not awaited"
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000)
            now = datetime.now(UTC)
            for records in batches.values():
                for record in records:
                    try:
                        self.book.add(Silence.model_validate_json(record.value), now)
                    except ValidationError as exc:
                        log.warning(
                            "silence record skipped",
                            partition=record.partition,
                            offset=record.offset,
                            reason=exc.errors()[0]["msg"],
                        )
