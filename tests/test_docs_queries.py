"""Every ready query of docs/queries.md runs, as written, on the synthetic dataset laid over the last 31 UTC
days (the queries say `today()`), and the first sections return what their prose says."""

import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pravis_rollups import clickhouse
from pravis_rollups.jobs import run_rollups
from pravis_rollups.rollups import ROLLUPS, RollupOptions
from pravis_rollups.synthetic import SyntheticConfig, generate, json_rows

DOC = Path(__file__).parents[1] / "docs" / "queries.md"


def ready_queries() -> list[tuple[str, str]]:
    """(section title, statement) for every statement in the SQL blocks after "## Ready queries"."""
    text = DOC.read_text().split("## Ready queries", 1)[1]
    found = []
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        title = section.splitlines()[0]
        for block in re.findall(r"```sql\n(.*?)```", section, flags=re.S):
            statements = [s.strip() for s in re.split(r";\s*$", block, flags=re.M)]
            found += [
                (title, s) for s in statements if any(not line.startswith("--") for line in s.splitlines())
            ]
    return found


QUERIES = ready_queries()


@pytest.fixture(scope="module")
def warehouse(clickhouse_server: str) -> Iterator[Any]:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    config = SyntheticConfig(seed=5, start=yesterday - timedelta(days=30), days=31, users=25)
    dataset = generate(config)
    url = f"{clickhouse_server}/pravis_docs_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    with clickhouse.connect(url) as client:
        clickhouse.insert_json_rows(client, "events", json_rows(dataset.all_events()))
        clickhouse.insert_json_rows(client, "events", json_rows(dataset.duplicates))
        clickhouse.insert_json_rows(client, "feedback_scored", json_rows(dataset.scored_feedback))
        run_rollups(client, config.start, dataset.end, options=RollupOptions(as_of=dataset.end))
        yield client


def test_the_tables_section_lists_every_rollup() -> None:
    filled_by_rollups = re.findall(r"^\| `(\w+)` \|.*\| rollups \|$", DOC.read_text(), flags=re.M)

    assert sorted(filled_by_rollups) == sorted([r.table for r in ROLLUPS] + ["rollup_runs"])


def test_the_doc_has_ready_queries_for_every_metric() -> None:
    titles = {title for title, _ in QUERIES}
    assert len(QUERIES) >= 15
    assert any(t.startswith("DAU") for t in titles) and any(t.startswith("Retention") for t in titles)


@pytest.mark.parametrize(("title", "sql"), QUERIES, ids=[f"{t[:30]}-{i}" for i, (t, _) in enumerate(QUERIES)])
def test_ready_query_runs_as_written(warehouse, title: str, sql: str) -> None:
    rows = warehouse.query(sql).result_rows
    # The synthetic data ends yesterday and holds no alerts, refusals or exposures: those queries only run.
    quiet = title.startswith(("Alerts", "Experiment")) or "INTERVAL 1 HOUR" in sql
    assert rows or quiet, sql


def test_dau_from_the_rollup_equals_dau_from_events_and_stickiness_is_dau_over_mau(warehouse) -> None:
    dau_section = [sql for title, sql in QUERIES if title.startswith("DAU")]
    rollup = {row[0]: row for row in warehouse.query(dau_section[0]).result_rows}
    from_events = dict(warehouse.query(dau_section[1]).result_rows)

    assert len(rollup) >= 28
    # The events query starts 30 days before now, mid-day: its first day is partial, the rest are whole.
    first_whole_day = datetime.now(UTC).date() - timedelta(days=29)
    for day, (_, dau, wau, mau, stickiness, _new) in rollup.items():
        if day >= first_whole_day:
            assert from_events.get(day, 0) == dau, day
        assert dau <= wau <= mau
        assert stickiness == pytest.approx(round(dau / mau, 3) if mau else 0, abs=1e-9)


def test_feature_adoption_is_users_over_active_users(warehouse) -> None:
    daily = next(sql for title, sql in QUERIES if title.startswith("Feature usage"))
    rows = warehouse.query(daily).result_rows
    active = dict(
        warehouse.query(
            "SELECT day, uniqExact(distinct_id) FROM user_activity_daily "
            "WHERE project_id = 'default' GROUP BY day"
        ).result_rows
    )

    assert rows
    for day, _feature, users, _events, adoption in rows:
        assert adoption == pytest.approx(round(users / active[day], 3), abs=1e-9)
