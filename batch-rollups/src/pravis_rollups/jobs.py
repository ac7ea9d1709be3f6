"""Running rollups against ClickHouse: plan the dates, compute each chunk into a staging copy of the table,
add the untouched dates of the same months, then swap every touched month in with `ALTER TABLE ... REPLACE
PARTITION` (or drop it when nothing is left in it).

Why partition replacement: it is atomic per partition on every MergeTree (chdb and a real ClickHouse alike),
so a re-run replaces a date's rows and a reader never sees a date half-written or twice. A ReplacingMergeTree
with a version would leave behind rows whose key disappeared (a user who moves to an earlier retention cohort
after a late event), and DELETE + INSERT would show a gap between the two statements. Monthly partitions (not
daily) keep a table at a dozen partitions a year, as ClickHouse advises, and one swap per month costs a few ms
where one per day cost a third of a 30-day run; the price is that two runs recomputing different dates of the
same month at the same moment could swap in each other's older copy of the other dates: run a backfill when
the scheduler is idle (or simply re-run it).
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import orjson
from clickhouse_connect.driver.client import Client
from pravis_schemas.personal_data import STAGING_TABLE_PREFIX

from pravis_rollups import clickhouse
from pravis_rollups.funnels import stored_funnels
from pravis_rollups.rollups import (
    MAU_WINDOW_DAYS,
    Query,
    Rollup,
    RollupOptions,
    day_range,
    funnel_daily,
    rollups_named,
    user_activity_daily,
)
from pravis_rollups.scan import scan_select

CHUNK_PARTITIONS = 31
"""Partitions computed by one INSERT ... SELECT, and days of events one shared scan holds in the server's
memory: bounded so memory stays small on long backfills (and within daily_active_users' 35-day limit)."""
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Step:
    rollup: Rollup
    partitions: tuple[date, ...]
    """Consecutive partitions of the rollup's grain (days, or cohort Mondays)."""
    shared_scan: bool = False
    """Read raw events from the runner's scan table of these days (shared with the next steps of the same
    days) rather than from the scan's select as a subquery of the rollup's own."""


@dataclass(frozen=True)
class StepResult:
    step: Step
    rows: int
    seconds: float


def yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def with_defaults(options: RollupOptions | None) -> RollupOptions:
    options = options or RollupOptions()
    return options if options.as_of else replace(options, as_of=yesterday())


def contiguous_chunks(partitions: Iterable[date], step_days: int, size: int) -> list[tuple[date, ...]]:
    """Sorted partitions cut into runs of consecutive ones (`step_days` apart), each at most `size` long."""
    runs: list[list[date]] = []
    for partition in sorted(set(partitions)):
        if runs and (partition - runs[-1][-1]).days == step_days and len(runs[-1]) < size:
            runs[-1].append(partition)
        else:
            runs.append([partition])
    return [tuple(run) for run in runs]


def plan(
    client: Client,
    first: date,
    last: date,
    names: list[str] | None = None,
    options: RollupOptions | None = None,
    chunk: int = CHUNK_PARTITIONS,
) -> list[Step]:
    """The steps recomputing [first, last] for the named rollups (all by default), in dependency order.

    Rollups reading user_activity_daily get it recomputed for [first, last] and computed for every earlier day
    it was never computed for (all history for retention, the MAU window otherwise). The rollups reading raw
    events come chunk by chunk (user_activity_daily first in each, since feature adoption reads it), then the
    ones reading only user_activity_daily.
    """
    if last < first:
        raise ValueError(f"--to {last} is before --from {first}")
    options = with_defaults(options)
    assert options.as_of is not None
    selected = rollups_named(names)
    needs = [r for r in selected if r.needs_activity]
    with_activity = bool(needs) or user_activity_daily in selected
    history: set[date] = set()
    if needs:
        whole_history = any(r.grain == "week" for r in needs)
        lowest = None if whole_history else first - timedelta(days=MAU_WINDOW_DAYS - 1)
        highest = max(last, options.as_of) if whole_history else last
        history = set(missing_activity_days(client, lowest, highest)) - set(day_range(first, last))
    steps = [Step(user_activity_daily, run) for run in contiguous_chunks(history, 1, chunk)]
    # The rollups reading raw events run chunk by chunk, each chunk's together, so they share one scan of it.
    readers = [r for r in selected if r.reads_events and r is not user_activity_daily]
    if with_activity:
        readers.insert(0, user_activity_daily)
    for run in contiguous_chunks(day_range(first, last), 1, chunk):
        steps += [Step(rollup, run, shared_scan=len(readers) > 1) for rollup in readers]
    for rollup in selected:
        if rollup.reads_events:
            continue
        for run in contiguous_chunks(rollup.partitions(first, last), rollup.partition_step_days, chunk):
            steps.append(Step(rollup, run))
    return steps


def missing_activity_days(client: Client, lowest: date | None, highest: date) -> list[date]:
    """Days in [lowest, highest] that have events but no recorded user_activity_daily run."""
    result = client.query(
        """
        SELECT day FROM (
            SELECT DISTINCT toDate(timestamp) AS day FROM events
            WHERE timestamp < toDateTime64({highest:Date} + 1, 3, 'UTC')
              AND ({lowest:Nullable(Date)} IS NULL
                   OR timestamp >= toDateTime64({lowest:Nullable(Date)}, 3, 'UTC'))
        )
        WHERE day NOT IN (SELECT partition FROM rollup_runs WHERE job = {job:String})
        ORDER BY day
        """,
        parameters={"lowest": lowest, "highest": highest, "job": user_activity_daily.table},
    )
    return [row[0] for row in result.result_rows]


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


class Runner:
    """Runs steps; keeps one staging table per rollup for the runner's life (drop them with `close`)."""

    def __init__(self, client: Client, options: RollupOptions | None = None) -> None:
        self.client = client
        self.options = with_defaults(options)
        self._staging: dict[str, str] = {}
        self._token = secrets.token_hex(4)
        self._scan: tuple[date, date] | None = None
        """The days the scan table holds the events of, once filled."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for staging in self._staging.values():
            self.client.command(f"DROP TABLE IF EXISTS {staging}")
        self._staging.clear()
        self.client.command(f"DROP TABLE IF EXISTS {self._scan_table}")
        self._scan = None

    @property
    def _scan_table(self) -> str:
        return _identifier(f"{STAGING_TABLE_PREFIX}scan_{self._token}")

    def _scan_of(self, first: date, last: date) -> str:
        """The scan table holding `scan_select(first, last)`, filled unless it already holds those days.

        A Memory table: it lives for a few statements, is read by each of them in full, and a sorted or
        compressed copy would cost more to write than it saves (measured).
        """
        if self._scan != (first, last):
            query = scan_select(first, last, self.options)
            self.client.command(f"DROP TABLE IF EXISTS {self._scan_table}")
            self._scan = None
            self.client.command(
                f"CREATE TABLE {self._scan_table} ENGINE = Memory AS {query.sql} LIMIT 0",
                parameters=query.parameters,
            )
            self.client.command(f"INSERT INTO {self._scan_table} {query.sql}", parameters=query.parameters)
            self._scan = (first, last)
        return self._scan_table

    def _source(self, step: Step) -> Query:
        """Where the step's rollup reads raw events (the text of its `source`, and the parameters that text
        needs): the shared scan table, or, for a rollup read alone, the scan's select as a subquery (its rows
        are not worth a copy then); nothing for a rollup that reads no events."""
        first, last = step.partitions[0], step.partitions[-1]
        if step.shared_scan:
            return Query(self._scan_of(first, last))
        if not step.rollup.reads_events:
            return Query("")
        scan = scan_select(first, last, self.options)
        return Query(f"({scan.sql})", scan.parameters)

    def _staging_for(self, rollup: Rollup) -> str:
        if rollup.table not in self._staging:
            staging = _identifier(f"{STAGING_TABLE_PREFIX}{rollup.table}_{self._token}")
            self.client.command(f"CREATE TABLE IF NOT EXISTS {staging} AS {_identifier(rollup.table)}")
            self._staging[rollup.table] = staging
        return self._staging[rollup.table]

    def run(self, step: Step) -> StepResult:
        began = time.monotonic()
        rollup, target = step.rollup, _identifier(step.rollup.table)
        staging = self._staging_for(rollup)
        column = _identifier(rollup.partition_column)
        first, last = step.partitions[0], step.partitions[-1]
        source = self._source(step)
        if rollup is funnel_daily and self.options.funnels is None:
            self.options = replace(self.options, funnels=tuple(stored_funnels(self.client)))
        query = rollup.select(first, last, self.options, source.sql)
        self.client.command(f"TRUNCATE TABLE {staging}")
        self.client.command(
            f"INSERT INTO {staging} ({', '.join(map(_identifier, rollup.columns))}) {query.sql}",
            parameters={**source.parameters, **query.parameters},
            settings={"max_partitions_per_insert_block": max(100, len(step.partitions) + 1)},
        )
        counts = dict(
            self.client.query(f"SELECT {column}, count() FROM {staging} GROUP BY {column}").result_rows
        )
        stray = sorted(set(counts) - set(step.partitions))
        if stray:
            raise RuntimeError(f"{rollup.table}: rows for partitions outside the step: {stray[:5]}")
        months = sorted({p.year * 100 + p.month for p in step.partitions})
        # The month partition swapped in must hold the month's other dates too: copy them from the table.
        self.client.command(
            f"INSERT INTO {staging} SELECT * FROM {target} "
            f"WHERE toYYYYMM({column}) IN {{months:Array(UInt32)}} AND {column} NOT IN {{dates:Array(Date)}}",
            parameters={"months": months, "dates": list(step.partitions)},
        )
        filled = {
            row[0]
            for row in self.client.query(f"SELECT DISTINCT toYYYYMM({column}) FROM {staging}").result_rows
        }
        commands = [
            f"REPLACE PARTITION {{m{i}:UInt32}} FROM {staging}"
            if m in filled
            else f"DROP PARTITION {{m{i}:UInt32}}"
            for i, m in enumerate(months)
        ]
        self.client.command(
            f"ALTER TABLE {target} {', '.join(commands)}",
            parameters={f"m{i}": m for i, m in enumerate(months)},
        )
        clickhouse.insert_json_rows(
            self.client,
            "rollup_runs",
            [
                orjson.dumps({"job": rollup.table, "partition": p.isoformat(), "rows": counts.get(p, 0)})
                for p in step.partitions
            ],
        )
        return StepResult(step, sum(counts.values()), time.monotonic() - began)


def run_rollups(
    client: Client,
    first: date,
    last: date,
    names: list[str] | None = None,
    options: RollupOptions | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> list[StepResult]:
    """Recompute the named rollups (all by default) for [first, last]; idempotent."""
    options = with_defaults(options)
    results = []
    with Runner(client, options) as runner:
        for step in plan(client, first, last, names, options):
            result = runner.run(step)
            results.append(result)
            if on_step:
                on_step(result)
    return results


def drop_stale_staging(client: Client, older_than: timedelta = timedelta(days=1)) -> list[str]:
    """Drop the staging tables of runs that died before cleaning up (a live run's are younger than a day)."""
    names = [
        row[0]
        for row in client.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() "
            "AND startsWith(name, {prefix:String}) AND metadata_modification_time < now() - {age:UInt32}",
            parameters={"prefix": STAGING_TABLE_PREFIX, "age": int(older_than.total_seconds())},
        ).result_rows
    ]
    for name in names:
        client.command(f"DROP TABLE IF EXISTS {_identifier(name)}")
    return names


def recompute_window(today: date, days: int) -> tuple[date, date]:
    """The scheduler's range: the `days` complete days before `today` (late events land in them)."""
    return today - timedelta(days=days), today - timedelta(days=1)
