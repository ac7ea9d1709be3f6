"""The loader against a real broker and warehouse: every topic, poison messages, redelivery, restarts,
outages.

Each test loads into a database of its own with a consumer group of its own, so it reads every topic from the
start (other tests' messages included); assertions look only at the test's own event ids and markers.
"""

import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from pravis_rollups import clickhouse
from pravis_rollups.loader import Loader
from pravis_rollups.routing import is_data_error
from pravis_rollups.settings import Settings
from pravis_schemas import RejectedEvent, topics
from pravis_schemas.messages import Alert, ScoredFeedback

from tests.support import services


def event(**fields) -> dict:
    now = datetime.now(UTC)
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "timestamp": now.isoformat(),
        "anonymous_id": "anon-loader",
        "session_id": "s-loader",
        "properties": {},
        "project_id": "loader-test",
        "received_at": now.isoformat(),
        **fields,
    }


def record(*rows: dict) -> bytes:
    """One `events` record: rows of one key, one per line (pravis_schemas.record_of_rows)."""
    return b"\n".join(orjson.dumps(row) for row in rows)


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value)
        await producer.flush()
    finally:
        await producer.stop()


def counts(url: str, ids: list[str], final: bool = True) -> dict[str, int]:
    with clickhouse.connect(url) as client:
        rows = client.query(
            f"SELECT toString(event_id), count() FROM events {'FINAL' if final else ''} "
            "WHERE event_id IN {ids:Array(UUID)} GROUP BY event_id",
            parameters={"ids": ids},
        ).result_rows
    return dict(rows)


@pytest.fixture
def database_url(clickhouse_server: str) -> str:
    return f"{clickhouse_server}/pravis_loader_{secrets.token_hex(4)}"


def loader_settings(bootstrap: str, url: str, group: str | None = None, **overrides) -> Settings:
    return Settings(
        kafka_bootstrap=bootstrap,
        clickhouse_url=url,
        loader_group_id=group or f"loader-test-{secrets.token_hex(4)}",
        loader_batch_seconds=0.5,
        loader_retry_max_seconds=1.0,
        **overrides,
    )


@contextlib.asynccontextmanager
async def running(loader: Loader):
    task = asyncio.create_task(loader.run())
    try:
        await asyncio.wait_for(loader.ready.wait(), 60)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


async def test_every_topic_lands_in_its_table(kafka_bootstrap: str, database_url: str) -> None:
    marker = secrets.token_hex(6)
    now = datetime.now(UTC)
    views = [event() for _ in range(3)]
    exposure = event(event_type="experiment_exposure", experiment_key=marker, variant="b", in_experiment=True)
    rejected = RejectedEvent(
        project_id=marker, received_at=now, index=2, error="rating: too big", raw={"x": 1}
    )
    alert = dict(
        alert_id=f"a-{marker}",
        severity="critical",
        project_id="p",
        metric="error_rate",
        observed=0.2,
        expected=0.01,
        window_start=now - timedelta(minutes=5),
        window_end=now,
        started_at=now,
        labels={"endpoint": "/api/v1/cart"},
    )
    firing = Alert(status="firing", **alert)
    resolved = Alert(status="resolved", resolved_at=now + timedelta(minutes=3), **alert)
    feedback_id = str(uuid.uuid4())
    scored = ScoredFeedback(
        event_id=feedback_id,
        project_id=marker,
        timestamp=now,
        rating=2,
        comment="slow",
        sentiment_score=-0.4,
        sentiment_label="negative",
        scored_at=now,
    )

    await produce(kafka_bootstrap, topics.EVENTS, [record(*views), record(exposure)])
    await produce(kafka_bootstrap, topics.EVENTS_REJECTED, [rejected.to_json()])
    await produce(kafka_bootstrap, topics.ALERTS, [firing.to_json(), resolved.to_json()])
    await produce(kafka_bootstrap, topics.FEEDBACK_SCORED, [scored.to_json()])

    ids = [e["event_id"] for e in [*views, exposure]]
    async with running(Loader(loader_settings(kafka_bootstrap, database_url))):
        await services.eventually(lambda: counts(database_url, ids) == dict.fromkeys(ids, 1))

        def others_loaded() -> bool:
            with clickhouse.connect(database_url) as client:
                return client.query(
                    "SELECT (SELECT count() FROM events_rejected FINAL WHERE project_id = {m:String}) = 1 "
                    "AND (SELECT count() FROM alerts FINAL WHERE alert_id = {a:String}) = 2 "
                    "AND (SELECT count() FROM feedback_scored FINAL WHERE project_id = {m:String}) = 1",
                    parameters={"m": marker, "a": f"a-{marker}"},
                ).result_rows[0][0]

        await services.eventually(others_loaded)

    with clickhouse.connect(database_url) as client:
        assert client.query(
            "SELECT error, raw FROM events_rejected WHERE project_id = {m:String}", parameters={"m": marker}
        ).result_rows == [("rating: too big", '{"x":1}')]
        assert client.query(
            "SELECT status, labels['endpoint'], resolved_at IS NOT NULL FROM alerts FINAL "
            "WHERE alert_id = {a:String} ORDER BY status",
            parameters={"a": f"a-{marker}"},
        ).result_rows == [("firing", "/api/v1/cart", False), ("resolved", "/api/v1/cart", True)]
        assert client.query(
            "SELECT toString(event_id), rating, sentiment_label FROM feedback_scored FINAL "
            "WHERE project_id = {m:String}",
            parameters={"m": marker},
        ).result_rows == [(feedback_id, 2, "negative")]
        assert client.query(
            "SELECT variant FROM events FINAL "
            "WHERE event_type = 'experiment_exposure' AND experiment_key = {m:String}",
            parameters={"m": marker},
        ).result_rows == [("b",)]


async def test_poison_messages_are_rejected_with_their_reason_and_do_not_stall(
    kafka_bootstrap: str, database_url: str
) -> None:
    marker = secrets.token_hex(6)
    before, after = event(), event()
    neighbour_a, neighbour_b = event(), event()
    bad_uuid = {**event(), "event_id": f"not-a-uuid-{marker}"}
    await produce(
        kafka_bootstrap,
        topics.EVENTS,
        [
            record(before),
            f"not json {marker}".encode(),
            record(neighbour_a, bad_uuid, neighbour_b),  # one bad row among good rows of one record
            b"",
            record({**event(), "timestamp": f"yesterday-{marker}"}),
            record(after),
        ],
    )
    await produce(kafka_bootstrap, topics.ALERTS, [orjson.dumps({"alert_id": marker, "status": "maybe"})])
    await produce(kafka_bootstrap, topics.FEEDBACK_SCORED, [orjson.dumps({"event_id": marker, "rating": 9})])

    good = [e["event_id"] for e in (before, neighbour_a, neighbour_b, after)]
    async with running(Loader(loader_settings(kafka_bootstrap, database_url))):
        await services.eventually(lambda: counts(database_url, good) == dict.fromkeys(good, 1))

        def rejected() -> list[tuple]:
            with clickhouse.connect(database_url) as client:
                return client.query(
                    "SELECT topic, line, value, reason FROM loader_rejected FINAL "
                    "WHERE position(value, {m:String}) > 0 ORDER BY topic, kafka_offset, line",
                    parameters={"m": marker},
                ).result_rows

        await services.eventually(lambda: len(rejected()) == 5)
        rows = rejected()

    by_topic = {(topic, value.split(marker)[0][-12:]): (line, reason) for topic, line, value, reason in rows}
    reasons = [reason for *_, reason in rows]
    assert [topic for topic, *_ in rows].count(topics.EVENTS) == 3
    assert any("CANNOT_PARSE_UUID" in r for r in reasons)
    assert any("Cannot parse input" in r or "CANNOT_PARSE" in r for r in reasons)
    assert any("DateTime" in r for r in reasons)
    bad_row = next(line for (topic, _), (line, _) in by_topic.items() if topic == topics.EVENTS and line)
    assert bad_row == 1  # the second line of its record
    assert any(r.startswith("Alert: ") and "status" in r for r in reasons)
    assert any(r.startswith("ScoredFeedback: ") and "rating" in r for r in reasons)


class SliceWatchingLoader(Loader):
    """Notes how many inserts run at once, through which clients, and whether any runs during a commit."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.running = self.most_at_once = self.commits_during_inserts = 0
        self.clients: set[int] = set()

    async def _insert_bisecting(self, client, table, batch):
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.clients.add(id(client))
        try:
            return await super()._insert_bisecting(client, table, batch)
        finally:
            self.running -= 1

    async def commit(self, consumer, fetched) -> None:
        self.commits_during_inserts += self.running > 0
        await super().commit(consumer, fetched)


async def test_big_batches_load_as_concurrent_slices_and_bad_rows_are_still_isolated(
    kafka_bootstrap: str, database_url: str
) -> None:
    marker = secrets.token_hex(6)
    views = [event() for _ in range(300)]
    bad = {**event(), "event_id": f"not-a-uuid-{marker}"}
    await produce(
        kafka_bootstrap,
        topics.EVENTS,
        [record(e) for e in views[:200]] + [record(bad)] + [record(e) for e in views[200:]],
    )
    settings = loader_settings(
        kafka_bootstrap, database_url, loader_parallel_insert_rows=10, loader_insert_parallelism=2
    )
    loader = SliceWatchingLoader(settings)
    ids = [e["event_id"] for e in views]

    def rejected() -> int:
        with clickhouse.connect(database_url) as client:
            return client.query(
                "SELECT count() FROM loader_rejected FINAL WHERE position(value, {m:String}) > 0",
                parameters={"m": marker},
            ).result_rows[0][0]

    async with running(loader):
        await services.eventually(lambda: counts(database_url, ids) == dict.fromkeys(ids, 1))
        await services.eventually(lambda: rejected() == 1)

    assert (loader.most_at_once, len(loader.clients), loader.commits_during_inserts) == (2, 2, 0)


class BufferedConsumer:
    """Hands out prepared fetches, one per getmany, as a consumer with that much buffered would."""

    def __init__(self, fetches: list[list[ConsumerRecord]]) -> None:
        self.fetches = fetches

    async def getmany(self, timeout_ms: int) -> dict[TopicPartition, list[ConsumerRecord]]:
        if not self.fetches:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        return {TopicPartition(topics.EVENTS, 0): self.fetches.pop(0)}


async def test_a_batch_closes_once_it_holds_loader_batch_bytes() -> None:
    def fetch(first: int) -> list[ConsumerRecord]:
        return [
            ConsumerRecord(topics.EVENTS, 0, offset, 0, 0, None, b"x" * 100, None, 0, 100, ())
            for offset in range(first, first + 3)
        ]

    consumer = BufferedConsumer([fetch(0), fetch(3), fetch(6), fetch(9), fetch(12)])
    loader = Loader(Settings(loader_batch_bytes=500, loader_batch_seconds=0.2))

    sizes = [sum(map(len, (await loader._next_batch(consumer)).values())) for _ in range(3)]

    assert sizes == [6, 6, 3]  # 300 bytes fetched is under the bound, 600 closes the batch


def test_identity_refreshes_within_a_second_of_an_alias_or_a_pending_id_else_on_the_recheck() -> None:
    def batch(*rows: bytes) -> dict[TopicPartition, list[ConsumerRecord]]:
        return {
            TopicPartition(topics.EVENTS, 0): [
                ConsumerRecord(topics.EVENTS, 0, 0, 0, 0, None, row, None, 0, len(row), ()) for row in rows
            ]
        }

    page_view = orjson.dumps(event())
    alias_with_spaces = json.dumps(event(event_type="alias", user_id="u-1", previous_id="u-2")).encode()
    assert b'"event_type": "alias"' in alias_with_spaces  # not the gateway's spelling
    loader = Loader(Settings(loader_identity_refresh_seconds=1.0, loader_identity_recheck_seconds=60.0))
    assert loader._identity_due(batch(page_view))  # nothing known before the first refresh

    loader._identity_wanted = None
    loader._identity_refreshed = time.monotonic() - 30
    assert not loader._identity_due(batch(page_view))
    assert not loader._identity_idle_due()  # a page view changes no merge: nothing for the idle loop either
    loader._identity_refreshed = time.monotonic() - 61
    assert loader._identity_due(batch(page_view))  # the recheck

    loader._identity_refreshed = time.monotonic() - 0.5
    assert not loader._identity_due(batch(page_view, alias_with_spaces))  # within the second...
    assert not loader._identity_idle_due()
    loader._identity_refreshed = time.monotonic() - 1.1
    assert loader._identity_idle_due()  # ...by the idle loop, or:
    assert loader._identity_due(batch(page_view))  # by the next batch a second on, alias or not

    # An alias's previous id no event carried as a user id yet: a batch carrying it (in any JSON spelling,
    # escapes included) wants a refresh, one carrying it only as an anonymous id does not.
    loader._identity_wanted = None
    loader._pending_ids = frozenset({"u-2", "ü-3"})
    loader._identity_refreshed = time.monotonic() - 2
    as_anonymous = orjson.dumps(event(anonymous_id="u-2"))
    assert not loader._identity_due(batch(page_view, as_anonymous))
    assert loader._identity_due(batch(page_view, json.dumps(event(user_id="u-2")).encode()))
    loader._identity_wanted = None
    assert loader._identity_due(batch(json.dumps(event(user_id="ü-3"), ensure_ascii=True).encode()))
    loader._identity_wanted = None
    assert loader._identity_due(batch(orjson.dumps(event(user_id="ü-3"))))


class CrashBeforeCommit(Exception):
    pass


class CrashingLoader(Loader):
    """Inserts its first batch, then dies before committing it, like a process killed at that instant."""

    async def commit(self, consumer, fetched) -> None:
        raise CrashBeforeCommit


async def test_batch_redelivered_after_a_crash_counts_once(kafka_bootstrap: str, database_url: str) -> None:
    views = [event() for _ in range(20)]
    ids = [e["event_id"] for e in views]
    await produce(kafka_bootstrap, topics.EVENTS, [record(e) for e in views])
    group = f"loader-test-{secrets.token_hex(4)}"

    crashing = CrashingLoader(loader_settings(kafka_bootstrap, database_url, group))
    with pytest.raises(CrashBeforeCommit):
        await asyncio.wait_for(crashing.run(), 60)
    assert counts(database_url, ids) == dict.fromkeys(ids, 1)
    crashed_at = datetime.now(UTC)

    def inserted_again() -> bool:
        """every event's surviving copy is the one inserted after the crash"""
        with clickhouse.connect(database_url) as client:
            return client.query(
                "SELECT min(inserted_at) > {t:DateTime64(3, 'UTC')} FROM events FINAL "
                "WHERE event_id IN {ids:Array(UUID)}",
                parameters={"ids": ids, "t": crashed_at},
            ).result_rows[0][0]

    async with running(Loader(loader_settings(kafka_bootstrap, database_url, group))):
        await services.eventually(inserted_again)

    # Stored twice until a background merge collapses the copies, counted once either way.
    assert counts(database_url, ids) == dict.fromkeys(ids, 1)
    with clickhouse.connect(database_url) as client:
        assert client.query(
            "SELECT count() FROM "
            "(SELECT * FROM events WHERE event_id IN {ids:Array(UUID)} LIMIT 1 BY event_id)",
            parameters={"ids": ids},
        ).result_rows == [(len(ids),)]


class FirstBatchFails(Loader):
    """Its first batch fails after the next one has been fetched and loaded (pipeline depth 2)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.loads = 0
        self.second_loaded = asyncio.Event()

    async def load(self, clients, fetched) -> None:
        self.loads += 1
        if self.loads == 1:
            await asyncio.wait_for(self.second_loaded.wait(), 30)
            raise RuntimeError("the first batch failed")
        await super().load(clients, fetched)
        self.second_loaded.set()


async def test_a_batch_never_commits_past_an_earlier_one_that_failed(
    kafka_bootstrap: str, database_url: str
) -> None:
    group = f"loader-test-{secrets.token_hex(4)}"
    loader = FirstBatchFails(loader_settings(kafka_bootstrap, database_url, group, loader_pipeline_depth=2))
    first, second = [event() for _ in range(3)], [event() for _ in range(3)]
    task = asyncio.create_task(loader.run())
    await asyncio.wait_for(loader.ready.wait(), 60)
    await produce(kafka_bootstrap, topics.EVENTS, [record(e) for e in first])
    await services.eventually(lambda: loader.loads >= 1)
    await produce(kafka_bootstrap, topics.EVENTS, [record(e) for e in second])
    with pytest.raises(RuntimeError, match="the first batch failed"):
        await asyncio.wait_for(task, 60)

    second_ids = [e["event_id"] for e in second]
    assert counts(database_url, second_ids) == dict.fromkeys(second_ids, 1)  # loaded, yet not committed:
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topics.EVENTS) or set()
        committed = [await consumer.committed(TopicPartition(topics.EVENTS, p)) for p in partitions]
    finally:
        await consumer.stop()
    assert partitions and committed == [None] * len(partitions)


def test_copies_in_two_monthly_partitions_count_once_with_final(database_url: str) -> None:
    """A retried batch whose clock-skew correction moved an event across midnight at a month's end: the
    copies sit in two partitions, which no background merge joins; FINAL still counts the event once
    (docs/queries.md)."""
    clickhouse.migrate(database_url)
    month_start = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    copy = event(timestamp=(month_start - timedelta(milliseconds=100)).isoformat())
    moved = {**copy, "timestamp": (month_start + timedelta(milliseconds=100)).isoformat()}
    with clickhouse.connect(database_url) as client:
        for row in (copy, moved):  # two inserts, as a redelivery makes them
            clickhouse.insert_json_rows(client, "events", [orjson.dumps(row)])
        partitions = client.query(
            "SELECT uniqExact(_partition_id) FROM events WHERE event_id = {id:UUID}",
            parameters={"id": copy["event_id"]},
        ).result_rows
    assert partitions == [(2,)]
    assert counts(database_url, [copy["event_id"]]) == {copy["event_id"]: 1}
    assert counts(database_url, [copy["event_id"]], final=False) == {copy["event_id"]: 2}


@pytest.fixture
def own_warehouse(tmp_path: Path, log_dir: Path) -> Iterator[tuple[services.Process, str]]:
    """A warehouse this test may stop and start again (same data, same port)."""
    if os.environ.get("PRAVIS_CLICKHOUSE_URL") or services.docker_available():
        pytest.skip("stops and restarts the embedded warehouse")
    port = services.free_port()
    process = services.Process(
        f"warehouse-outage-{port}",
        [sys.executable, "-m", "pravis_local.warehouse", "--port", str(port), "--data-dir", str(tmp_path)],
        log_dir,
    )
    process.start()
    services.wait_for_http(f"http://127.0.0.1:{port}/ping", process.popen)
    try:
        yield process, f"http://127.0.0.1:{port}/pravis_outage"
    finally:
        process.stop()


async def test_loader_killed_or_cut_off_from_clickhouse_catches_up_losing_nothing(
    kafka_bootstrap: str, own_warehouse: tuple[services.Process, str], log_dir: Path
) -> None:
    warehouse, url = own_warehouse
    health_port = services.free_port()
    env = {
        "PRAVIS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PRAVIS_CLICKHOUSE_URL": url,
        "PRAVIS_LOADER_GROUP_ID": f"loader-test-{secrets.token_hex(4)}",
        "PRAVIS_LOADER_HEALTH_PORT": str(health_port),
        "PRAVIS_LOADER_BATCH_SECONDS": "0.3",
        "PRAVIS_LOADER_RETRY_MAX_SECONDS": "1",
    }
    loader = services.Process("loader-outage", [sys.executable, "-m", "pravis_rollups.loader"], log_dir, env)
    waves = [[event() for _ in range(40)] for _ in range(4)]
    ids = [e["event_id"] for wave in waves for e in wave]

    loader.start()
    try:
        services.wait_for_http(f"http://127.0.0.1:{health_port}/healthz", loader.popen)
        await produce(kafka_bootstrap, topics.EVENTS, [record(e) for e in waves[0]])
        await services.eventually(lambda: len(counts(url, [e["event_id"] for e in waves[0]])) == 40)

        await produce(kafka_bootstrap, topics.EVENTS, [record(e) for e in waves[1]])
        loader.kill()  # SIGKILL, mid-stream
        await produce(kafka_bootstrap, topics.EVENTS, [record(e) for e in waves[2]])
        warehouse.stop()  # ClickHouse unreachable ...
        loader.start()  # ... while the loader comes back: it backs off, committing nothing
        await produce(kafka_bootstrap, topics.EVENTS, [record(e) for e in waves[3]])
        await asyncio.sleep(3)
        assert loader.popen is not None and loader.popen.poll() is None, loader.log_tail()
        warehouse.start()

        await services.eventually(lambda: counts(url, ids) == dict.fromkeys(ids, 1), timeout_s=90)
    finally:
        loader.stop()


@pytest.mark.parametrize(
    ("message", "rows_at_fault"),
    [
        ("Code: 376. DB::Exception: Cannot parse UUID from String", True),
        ("Code: 1001. DB::Exception: engine error: 'utf-8' codec can't decode byte 0xff", True),
        ("Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100)", True),
        ("Code: 252. DB::Exception: Too many parts (3000). Merges are processing slower than inserts", False),
        ("Code: 241. DB::Exception: Memory limit (total) exceeded", False),
        ("Connection refused", False),
    ],
)
def test_only_refusals_of_the_rows_themselves_are_bisected_the_rest_retried(
    message: str, rows_at_fault: bool
) -> None:
    assert is_data_error(Exception(message)) is rows_at_fault
