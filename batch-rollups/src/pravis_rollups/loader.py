"""Loader: one consumer on every warehouse topic, batched inserts into ClickHouse, offsets committed after
them.

Topics and tables are in `pravis_rollups.routing`. A batch closes at `loader_batch_rows` messages,
`loader_batch_bytes` or after `loader_batch_seconds`; each table's rows go in as one JSONEachRow insert (above
`loader_parallel_insert_rows` messages: as `loader_insert_parallelism` concurrent inserts of contiguous
slices), then the batch's offsets are committed.
- ClickHouse unreachable or failing: the insert is retried with exponential backoff (forever); nothing is
  committed, so a crash meanwhile re-reads the batch from Kafka.
- A message ClickHouse refuses (or that fails its topic's model): the batch is bisected until the bad messages
  are alone; they go to `loader_rejected` with the reason and the rest is loaded. It never stalls on one.
- Redelivery (crash between insert and commit): every table is a ReplacingMergeTree keyed on the message's
  identity (event_id, alert_id + status, Kafka position), so `FINAL` / `LIMIT 1 BY` count each message once.
- Identity (docs/identity.md): the insert path's materialized views keep the links and identified users, and
  `identity_merges` is brought in line with the aliases between identified users: at start-up, at most
  `loader_identity_refresh_seconds` after a batch holding an alias or carrying, as a user id, the previous id
  of a recent alias that no event had carried as one (a *pending* id: that event changes the merges), and
  otherwise every `loader_identity_recheck_seconds`, which also catches what no batch of this loader shows
  (another loader's aliases, an alias older than `loader_identity_pending_seconds` whose id turns up late).
  The refresh compares the whole state, so it is idempotent and a crash only makes it run again.

One consumer for all topics, not one per topic: the events topic is nearly all of the volume, the others add a
few records per fetch, and one commit point keeps "inserted before committed" a single ordered step.
"""

import asyncio
import contextlib
import math
import re
import time
from collections import deque
from dataclasses import dataclass, field

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from clickhouse_connect.driver.client import Client
from pravis_schemas import rows_of_record, topics
from pravis_schemas.logs import configure_logging
from prometheus_client import Counter, Gauge, Histogram
from tenacity import AsyncRetrying, retry_if_exception, wait_exponential

from pravis_rollups import clickhouse
from pravis_rollups.kafka import loader_consumer
from pravis_rollups.ops import run_with_ops
from pravis_rollups.routing import ROUTES, Invalid, is_data_error, reason_of
from pravis_rollups.settings import Settings, settings

log = structlog.get_logger("pravis.loader")
ROWS_LOADED = Counter(
    "pravis_loader_rows_total",
    "Messages inserted into ClickHouse (an events message may hold several rows)",
    ["table"],
)
REJECTED = Counter("pravis_loader_rejected_total", "Messages written to loader_rejected", ["topic"])
INSERT_FAILURES = Counter(
    "pravis_loader_insert_failures_total", "Failed insert attempts (retried)", ["table"]
)
MERGES_WRITTEN = Counter(
    "pravis_loader_identity_merges_written_total", "Rows written to identity_merges (person of merged users)"
)
IDENTITY_REFRESHES = Counter(
    "pravis_loader_identity_refreshes_total",
    "Identity refreshes run (each one warehouse round trip), by what asked for it",
    ["reason"],
)
ALIAS_ROW = re.compile(rb'"event_type"\s*:\s*"alias"')
"""An alias in an `events` row as any JSON writer spells it (the gateway writes no spaces). Only a \\u escape
of plain letters, which no JSON encoder emits for them, would hide one."""
USER_ID_VALUE = re.compile(rb'"user_id"\s*:\s*"((?:[^"\\]|\\.)*)"')
"""Every `user_id` string in a record, top level or not: a superset only costs a refresh, a miss a delay."""
BATCH_SECONDS = Histogram("pravis_loader_batch_seconds", "Time to insert and commit one batch")
BATCHES_IN_FLIGHT = Gauge(
    "pravis_loader_batches_in_flight",
    "Fetched batches not yet committed (inserting, or inserted and waiting for the batch before to commit)",
)


def json_string(raw: bytes) -> str:
    """The text of a JSON string's body as USER_ID_VALUE captured it."""
    return orjson.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode(errors="replace")


REJECTED_COLUMNS = ["topic", "kafka_partition", "kafka_offset", "line", "key", "value", "reason"]


@dataclass
class TableBatch:
    """The rows of one table in a batch and the records they came from (for bisecting and rejecting)."""

    records: list[ConsumerRecord] = field(default_factory=list)
    rows: list[bytes] = field(default_factory=list)


@dataclass
class Rejection:
    record: ConsumerRecord
    reason: str
    line: int = 0
    """Index of the refused row in the record (an `events` record holds one row per line)."""
    row: bytes | None = None
    """The refused row when it is one line of a record, else the whole record is meant."""


class Loader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = asyncio.Event()
        self._identity_lock = asyncio.Lock()
        self._identity_refreshed = -math.inf
        """When the last identity refresh began (monotonic): every batch inserted before it is covered."""
        self._identity_wanted: str | None = "start-up"
        """Why a refresh is wanted soon, if it is: a batch inserted since the last refresh began may change
        the merges (it holds an alias or a pending id); at start-up, an earlier run may have committed one it
        did not refresh for. None: only the recheck is due."""
        self._pending_ids: frozenset[str] = frozenset()
        """From the last refresh: previous ids of recent aliases not yet seen as a user id."""

    def _retrying(self, what: str, table: str = "", only_transient: bool = False) -> AsyncRetrying:
        def before_sleep(state) -> None:
            if table:
                INSERT_FAILURES.labels(table).inc()
            log.warning(
                f"{what} failed, retrying",
                table=table or None,
                attempt=state.attempt_number,
                error=str(state.outcome.exception())[:300],
            )

        return AsyncRetrying(
            wait=wait_exponential(multiplier=0.2, max=self.settings.loader_retry_max_seconds),
            # Only errors are retried: a cancelled task (shutdown) must stop, not try again.
            retry=retry_if_exception(
                lambda exc: isinstance(exc, Exception) and not (only_transient and is_data_error(exc))
            ),
            before_sleep=before_sleep,
            reraise=True,
        )

    async def run(self) -> None:
        async for attempt in self._retrying("migration"):
            with attempt:
                applied = await asyncio.to_thread(
                    clickhouse.migrate, self.settings.clickhouse_url, self.settings.retention
                )
        log.info("migrations applied", applied=applied)
        depth = self.settings.loader_pipeline_depth
        async for attempt in self._retrying("connect"):
            with attempt:
                slots = [await asyncio.to_thread(self._connect) for _ in range(depth)]
                identity_client = await asyncio.to_thread(clickhouse.connect, self.settings.clickhouse_url)
        consumer = loader_consumer(self.settings, *ROUTES)
        await consumer.start()
        self.ready.set()
        log.info("loader started", topics=list(ROUTES), group=self.settings.loader_group_id)
        # Batches are fetched while earlier ones are inserted, up to `depth` batches inserting at once (each
        # with its own clients, a "slot"). Every batch commits only after its own rows are in and the batch
        # before it has committed, so offsets still move in order, after the rows. One batch inserting at a
        # time leaves a core idle while its slower slice finishes; two gave +5% events/s on the embedded stack
        # (2 cores, 2M events: 336k/324k -> 357k/339k over two runs each).
        pending: deque[asyncio.Task] = deque()
        idle_refresh: asyncio.Task | None = None
        batches = 0
        try:
            while True:
                fetched = await self._next_batch(consumer)
                if idle_refresh is not None and idle_refresh.done():
                    idle_refresh.result()  # re-raises what the refresh could not retry
                    idle_refresh = None
                if not fetched and self._identity_idle_due() and idle_refresh is None:
                    # In the background: while the warehouse is down the refresh retries, and the loop must
                    # go on fetching and inserting, where an outage shows (insert failures, lag).
                    idle_refresh = asyncio.create_task(self.refresh_identity(identity_client))
                while pending and (len(pending) >= depth or pending[0].done()):
                    await pending.popleft()  # re-raises a failed batch: nothing after it has committed
                if fetched:
                    previous = pending[-1] if pending else None
                    pending.append(
                        asyncio.create_task(
                            self._load_and_commit(
                                slots[batches % depth], identity_client, consumer, fetched, previous
                            )
                        )
                    )
                    batches += 1
        finally:
            if idle_refresh is not None:
                pending.append(idle_refresh)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await consumer.stop()  # always: a consumer left running would keep its partitions in the group
            for client in (client for slot in slots for client in slot):
                client.close()
            identity_client.close()

    def _connect(self) -> list[Client]:
        # One client per concurrent insert: clickhouse-connect documents a Client as not thread-safe when it
        # has a session id, which it generates by default, because ClickHouse refuses a second query in a busy
        # session (SESSION_IS_LOCKED).
        return [
            clickhouse.connect(self.settings.clickhouse_url)
            for _ in range(self.settings.loader_insert_parallelism)
        ]

    async def _load_and_commit(
        self,
        clients: list[Client],
        identity_client: Client,
        consumer: AIOKafkaConsumer,
        fetched: dict[TopicPartition, list[ConsumerRecord]],
        previous: asyncio.Task | None,
    ) -> None:
        began = time.monotonic()
        with BATCHES_IN_FLIGHT.track_inprogress():
            await self.load(clients, fetched)
            if self._identity_due(fetched):
                await self.refresh_identity(identity_client)
            if previous is not None:
                await previous  # raises if the batch before failed: this one must not commit past it
            await self.commit(consumer, fetched)
        BATCH_SECONDS.observe(time.monotonic() - began)

    def _identity_due(self, fetched: dict[TopicPartition, list[ConsumerRecord]]) -> bool:
        """Whether this batch, once inserted, needs the identity refresh before its commit; if not, it is
        left for a later batch or the idle loop."""
        events = [
            record for tp, records in fetched.items() if tp.topic == topics.EVENTS for record in records
        ]
        # Within `loader_identity_refresh_seconds`, not before this very commit: with aliases in most
        # batches of a fast load a refresh per batch cost the 10M-event bench more warehouse time than
        # the identity views (~55 ms each). A crash before the refresh is covered by the start-up one.
        for record in events:
            if reason := self._identity_change(record.value or b""):
                self._identity_wanted = self._identity_wanted or reason
                break
        return bool(events) and self._identity_idle_due()

    def _identity_change(self, value: bytes) -> str | None:
        """Why this record may change the merges, or None."""
        if ALIAS_ROW.search(value):
            return "alias"
        if not self._pending_ids:
            return None  # the common case, and the whole of a backfill: no scan of the rows
        if any(json_string(raw) in self._pending_ids for raw in USER_ID_VALUE.findall(value)):
            return "pending id"
        return None

    def _identity_idle_due(self) -> bool:
        """Whether a refresh is due now: soon after a batch that may change the merges, else the recheck."""
        interval = (
            self.settings.loader_identity_refresh_seconds
            if self._identity_wanted
            else self.settings.loader_identity_recheck_seconds
        )
        return time.monotonic() - self._identity_refreshed >= interval

    async def refresh_identity(self, client: Client) -> None:
        """One refresh at a time, on a client of its own: the pipelined batches and the idle loop share it."""
        async with self._identity_lock:
            # Reset before reading: a batch asking for a refresh from now on was maybe not read by this one.
            reason, self._identity_wanted = self._identity_wanted or "recheck", None
            self._identity_refreshed = time.monotonic()
            async for attempt in self._retrying("identity refresh", "identity_merges"):
                with attempt:
                    refreshed = await asyncio.to_thread(
                        clickhouse.refresh_identity_merges,
                        client,
                        self.settings.loader_identity_pending_seconds,
                    )
            IDENTITY_REFRESHES.labels(reason).inc()
            if refreshed.pending_ids - self._pending_ids:
                # A batch loaded while this refresh ran was checked against the old pending ids: one more
                # refresh covers a new pending id it may carry.
                self._identity_wanted = self._identity_wanted or "new pending id"
            self._pending_ids = refreshed.pending_ids
        if refreshed.written:
            MERGES_WRITTEN.inc(refreshed.written)
            log.info("identity merges refreshed", rows=refreshed.written)

    async def _next_batch(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[ConsumerRecord]]:
        batch: dict[TopicPartition, list[ConsumerRecord]] = {}
        count = size = 0
        deadline = time.monotonic() + self.settings.loader_batch_seconds
        while count < self.settings.loader_batch_rows and size < self.settings.loader_batch_bytes:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                break
            for tp, records in (await consumer.getmany(timeout_ms=remaining_ms)).items():
                batch.setdefault(tp, []).extend(records)
                count += len(records)
                size += sum(len(record.value or b"") for record in records)
        return batch

    async def load(self, clients: list[Client], fetched: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        """Insert every record of the batch, or reject it with a reason; returns once all are in
        ClickHouse."""
        tables: dict[str, TableBatch] = {}
        rejections: list[Rejection] = []
        for tp, records in fetched.items():
            route = ROUTES[tp.topic]
            batch = tables.setdefault(route.table, TableBatch())
            if route.table == "events":  # hot path: ClickHouse parses and validates
                rows = [record.value for record in records]
                if all(rows):
                    batch.records += records
                    batch.rows += rows
                    continue
            for record in records:
                try:
                    if not record.value:
                        raise Invalid("empty message")
                    batch.rows.append(route.prepare(record.value, record.partition, record.offset))
                    batch.records.append(record)
                except Invalid as exc:
                    rejections.append(Rejection(record, str(exc)))
        for table, batch in tables.items():
            if batch.rows:
                rejections += await self._insert_sliced(clients, table, batch)
        if rejections:
            await self._reject(clients[0], rejections)
        log.info(
            "batch loaded",
            rows={table: len(batch.rows) for table, batch in tables.items()},
            rejected=len(rejections),
        )

    async def _insert_sliced(self, clients: list[Client], table: str, batch: TableBatch) -> list[Rejection]:
        """Insert a table's rows, above `loader_parallel_insert_rows` as contiguous slices at once (one per
        client); return the refused rows.

        ClickHouse parses one insert's JSON on one thread (chdb: ~250k rows/s), so concurrent inserts put more
        cores to work. The slices may land in any order: every loader table is a ReplacingMergeTree keyed on
        the message's identity, and rows sharing one are redelivered copies."""
        slices = 1 if len(batch.rows) <= self.settings.loader_parallel_insert_rows else len(clients)
        size = math.ceil(len(batch.rows) / slices)
        parts = [
            TableBatch(batch.records[i : i + size], batch.rows[i : i + size])
            for i in range(0, len(batch.rows), size)
        ]
        # A task group, not gather: if one slice fails, the others are cancelled rather than left running
        # against clients that the caller is about to close.
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(self._insert_bisecting(client, table, part))
                for client, part in zip(clients, parts, strict=False)
            ]
        return [rejection for task in tasks for rejection in task.result()]

    async def _insert_bisecting(self, client: Client, table: str, batch: TableBatch) -> list[Rejection]:
        """Insert the rows; when ClickHouse refuses them, halve until each refused row is alone (a refused
        `events` record is split into its lines first), load the rest, and return the refused rows."""
        rejected: list[Rejection] = []
        pending: list[tuple[list[ConsumerRecord], list[bytes], list[int] | None]] = [
            (batch.records, batch.rows, None)
        ]
        while pending:
            records, rows, lines = pending.pop()
            try:
                async for attempt in self._retrying("insert", table, only_transient=True):
                    with attempt:
                        await asyncio.to_thread(clickhouse.insert_json_rows, client, table, rows)
                ROWS_LOADED.labels(table).inc(len(rows))
            except Exception as exc:  # only data errors get here: the retry policy retries everything else
                if len(rows) == 1 and lines is None and b"\n" in rows[0]:
                    split = rows_of_record(rows[0])
                    pending.append(([records[0]] * len(split), split, list(range(len(split)))))
                elif len(rows) == 1:
                    line = lines[0] if lines else 0
                    row = rows[0] if lines else None
                    rejected.append(Rejection(records[0], reason_of(exc), line, row))
                else:
                    half = len(rows) // 2
                    pending.append((records[half:], rows[half:], lines[half:] if lines else None))
                    pending.append((records[:half], rows[:half], lines[:half] if lines else None))
        return rejected

    async def _reject(self, client: Client, rejections: list[Rejection]) -> None:
        rows = [
            [
                r.record.topic,
                r.record.partition,
                r.record.offset,
                r.line,
                r.record.key.decode(errors="replace") if r.record.key is not None else None,
                (r.row if r.row is not None else r.record.value or b"").decode(errors="replace"),
                r.reason,
            ]
            for r in rejections
        ]
        async for attempt in self._retrying("reject", "loader_rejected"):
            with attempt:
                await asyncio.to_thread(client.insert, "loader_rejected", rows, column_names=REJECTED_COLUMNS)
        for r in rejections:
            REJECTED.labels(r.record.topic).inc()
            log.warning(
                "message rejected",
                topic=r.record.topic,
                partition=r.record.partition,
                offset=r.record.offset,
                line=r.line,
                reason=r.reason[:300],
            )

    async def commit(
        self, consumer: AIOKafkaConsumer, fetched: dict[TopicPartition, list[ConsumerRecord]]
    ) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in fetched.items() if records}
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # The group rebalanced while ClickHouse was slow: the rows are in, Kafka will hand the batch out
            # again and the ReplacingMergeTree tables absorb the copies.
            log.warning("offset commit failed; the batch will be redelivered", error=str(exc))


async def serve(settings: Settings) -> None:
    loader = Loader(settings)
    await run_with_ops(loader.run(), loader.ready, settings.loader_health_host, settings.loader_health_port)


def main() -> None:
    configure_logging(settings.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
