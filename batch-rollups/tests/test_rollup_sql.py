"""The rollup SQL builders and planning helpers, without a database."""

import re
from datetime import date, datetime

import pytest
from pravis_rollups.clickhouse import migration_files
from pravis_rollups.jobs import contiguous_chunks, recompute_window
from pravis_rollups.report import last_complete_week
from pravis_rollups.rollups import BY_NAME, ROLLUPS, RollupOptions, monday, rollups_named
from pravis_rollups.scan import SCAN_COLUMNS, scan_days_before, scan_select
from pravis_rollups.scheduler import last_due, next_due, plan_cycle

OPTIONS = RollupOptions(as_of=date(2024, 3, 31))
PLACEHOLDER = re.compile(r"\{(\w+):([^}]+)\}")
EVENT_COLUMNS = {
    line.split()[0]
    for line in migration_files()[0][2].splitlines()
    if line.startswith("    ") and not line.strip().startswith(("INDEX", "--"))
}
"""Column names of the events table (migration 0001)."""
SCAN = "scan"
"""A shared scan table's name, as the jobs pass it for `source`."""


@pytest.mark.parametrize("rollup", ROLLUPS, ids=lambda r: r.table)
def test_every_value_is_a_query_parameter(rollup) -> None:
    first, last = (date(2024, 3, 4), date(2024, 3, 11))
    query = rollup.select(first, last, OPTIONS, SCAN)

    used = {name for name, _ in PLACEHOLDER.findall(query.sql)}
    assert used == set(query.parameters)
    assert "2024" not in query.sql and "'default'" not in query.sql
    assert query.parameters["date_from"] == first and query.parameters["date_to"] == last


@pytest.mark.parametrize("rollup", ROLLUPS, ids=lambda r: r.table)
def test_selects_mention_every_table_column(rollup) -> None:
    sql = rollup.select(date(2024, 3, 4), date(2024, 3, 4), OPTIONS, SCAN).sql

    assert rollup.columns[0] == "project_id" and rollup.partition_column in rollup.columns
    for column in rollup.columns:
        assert re.search(rf"\b{column}\b", sql), column


@pytest.mark.parametrize("rollup", ROLLUPS, ids=lambda r: r.table)
def test_raw_tables_are_read_deduplicated(rollup) -> None:
    first = last = date(2024, 3, 4)
    scan = scan_select(first, last, OPTIONS)
    sql = rollup.select(first, last, OPTIONS, f"({scan.sql})").sql

    assert not re.search(r"FROM (events|feedback_scored)\b(?:\s+AS\s+\w+)?+(?! FINAL)", sql)


def test_dates_change_parameters_only() -> None:
    # One SQL text per rollup whatever the window: the dates travel as parameters, never in the statement.
    for rollup in ROLLUPS:
        march = rollup.select(monday(date(2024, 3, 6)), monday(date(2024, 3, 20)), OPTIONS, SCAN)
        may = rollup.select(monday(date(2024, 5, 8)), monday(date(2024, 5, 29)), OPTIONS, SCAN)
        assert march.sql == may.sql, rollup.table
        changed = {name for name in march.parameters if march.parameters[name] != may.parameters[name]}
        assert changed == {"date_from", "date_to"}, rollup.table
        window = (may.parameters["date_from"], may.parameters["date_to"])
        assert window == (date(2024, 5, 6), date(2024, 5, 27)), rollup.table


def test_repeat_window_and_lookback_are_parameters() -> None:
    voice = BY_NAME["voice_metrics_daily"].select(
        date(2024, 3, 4), date(2024, 3, 4), RollupOptions(repeat_window_s=45), SCAN
    )
    ai = BY_NAME["ai_performance_daily"].select(date(2024, 3, 4), date(2024, 3, 4), RollupOptions(), SCAN)

    assert voice.parameters["repeat_window_s"] == 45
    assert ai.parameters["feedback_lookback_days"] == 1
    assert ai.parameters["ai_types"] == ["voice_request", "transcription", "tts", "conversation"]


def test_retention_needs_as_of_and_mondays() -> None:
    retention = BY_NAME["retention_cohorts"]
    with pytest.raises(ValueError, match="as_of"):
        retention.select(date(2024, 3, 4), date(2024, 3, 4), RollupOptions(), SCAN)
    with pytest.raises(ValueError, match="Mondays"):
        retention.select(date(2024, 3, 5), date(2024, 3, 5), OPTIONS, SCAN)


def test_partitions_of_a_day_range() -> None:
    days = BY_NAME["daily_active_users"].partitions(date(2024, 2, 28), date(2024, 3, 2))
    weeks = BY_NAME["retention_cohorts"].partitions(date(2024, 3, 13), date(2024, 3, 14))

    assert days == [date(2024, 2, 28), date(2024, 2, 29), date(2024, 3, 1), date(2024, 3, 2)]
    # cohorts whose day-30 activity the range can still change: from the week of 30 days before
    assert weeks[0] == monday(date(2024, 2, 12)) and weeks[-1] == date(2024, 3, 11)
    assert all(w.weekday() == 0 for w in weeks)


def test_rollups_named_keeps_run_order_and_refuses_unknown() -> None:
    assert [r.table for r in rollups_named(["feedback_daily", "user_activity_daily"])] == [
        "user_activity_daily",
        "feedback_daily",
    ]
    with pytest.raises(ValueError, match="unknown rollup nope"):
        rollups_named(["nope"])


def test_contiguous_chunks() -> None:
    days = [date(2024, 3, d) for d in (1, 2, 3, 5, 6, 9)]

    assert contiguous_chunks(days, 1, 2) == [
        (date(2024, 3, 1), date(2024, 3, 2)),
        (date(2024, 3, 3),),
        (date(2024, 3, 5), date(2024, 3, 6)),
        (date(2024, 3, 9),),
    ]


def test_schedule_moments() -> None:
    at = datetime(2024, 3, 5, 2, 0).time()

    assert (
        last_due(datetime.fromisoformat("2024-03-05T01:59:00+00:00"), at).isoformat()
        == "2024-03-04T02:00:00+00:00"
    )
    assert (
        last_due(datetime.fromisoformat("2024-03-05T02:00:00+00:00"), at).isoformat()
        == "2024-03-05T02:00:00+00:00"
    )
    assert (
        next_due(datetime.fromisoformat("2024-03-05T02:00:00+00:00"), at).isoformat()
        == "2024-03-06T02:00:00+00:00"
    )


def test_a_cycle_recomputes_the_last_days_and_reports_on_report_day() -> None:
    assert recompute_window(date(2024, 3, 11), 3) == (date(2024, 3, 8), date(2024, 3, 10))
    monday_cycle = plan_cycle(date(2024, 3, 11), 3, report_weekday=0)
    tuesday_cycle = plan_cycle(date(2024, 3, 12), 3, report_weekday=0)

    assert monday_cycle.report_week == date(2024, 3, 4) == last_complete_week(date(2024, 3, 11))
    assert tuesday_cycle.report_week is None
    assert last_complete_week(date(2024, 3, 17)) == date(2024, 3, 4)


@pytest.mark.parametrize("rollup", [r for r in ROLLUPS if r.reads_events], ids=lambda r: r.table)
def test_a_shared_scan_holds_every_event_column_a_rollup_reads(rollup) -> None:
    sql = rollup.select(date(2024, 3, 4), date(2024, 3, 5), OPTIONS, SCAN).sql
    reads = {c for c in re.findall(r"\b([a-z_]+)\b", sql) if c in EVENT_COLUMNS}

    assert "events FINAL" not in sql and "FROM scan" in sql
    assert reads <= set(SCAN_COLUMNS), reads - set(SCAN_COLUMNS)


def test_the_scan_window_covers_every_look_around() -> None:
    assert scan_days_before(RollupOptions()) == 1
    assert scan_days_before(RollupOptions(feedback_lookback_days=3)) == 3
    assert scan_days_before(RollupOptions(repeat_window_s=86_401)) == 2
    query = scan_select(date(2024, 3, 4), date(2024, 3, 5), RollupOptions(feedback_lookback_days=3))
    assert query.parameters == {
        "date_from": date(2024, 3, 4),
        "date_to": date(2024, 3, 5),
        "days_before": 3,
        "order_days": 30,
    }
    assert "OR e.event_type = 'feedback'" in query.sql  # feedback on an answer may come any time later
    assert "e.event_type IN ('order_completed', 'order_refunded')" in query.sql  # an order counts once


def test_the_scan_joins_the_persons_once_and_users_are_counted_by_person() -> None:
    scan = scan_select(date(2024, 3, 4), date(2024, 3, 5), OPTIONS).sql
    assert scan.count("JOIN person_overrides") == 1 and SCAN_COLUMNS[-1] == "person_id"
    assert re.search(r"\bperson_id\b", scan.split("FROM", 1)[0])
    for rollup in ROLLUPS:
        sql = rollup.select(date(2024, 3, 4), date(2024, 3, 4), OPTIONS, SCAN).sql
        # A user count never counts a raw id: only the person (read from the scan, or mapped again from
        # user_activity_daily through person_overrides).
        assert not re.search(r"uniqExact(If)?\(\w*\.?distinct_id", sql), rollup.table
        if not rollup.reads_events and rollup.needs_activity:
            assert "person_overrides" in sql, rollup.table


def test_revenue_reads_its_orders_and_refunds_from_the_scan_once() -> None:
    # Both types and their look-back in one GROUP BY, then one aggregation (it read the scan six times).
    sql = BY_NAME["revenue_daily"].select(date(2024, 3, 4), date(2024, 3, 5), OPTIONS, SCAN).sql

    assert sql.count(f"FROM {SCAN}") == 3  # the order and refund lines, the AI sessions, the AI users
    assert sql.count("event_type IN ('order_completed', 'order_refunded')") == 1 and " NOT IN (" not in sql
