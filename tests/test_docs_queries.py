"""Every ready query of docs/queries.md runs, as written, on the synthetic dataset laid over the last 31 UTC
days (the queries say `today()`), and the first sections return what their prose says."""

import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pravis_local.demo import demo_resource_samples
from pravis_local.synthetic import Dataset, SyntheticConfig, generate, json_rows, parse_iso
from pravis_rollups import clickhouse
from pravis_rollups.jobs import run_rollups
from pravis_rollups.rollups import ROLLUPS, RollupOptions
from pravis_schemas.funnels import FUNNEL_COLUMNS, FunnelDefinition
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tests.support.persons import persons

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


def scored_answers(dataset: Dataset) -> list[dict[str, Any]]:
    """What the stream tier publishes for the dataset's open-text survey answers (VADER's own scores)."""
    analyzer = SentimentIntensityAnalyzer()
    rows = []
    for e in dataset.all_events():
        for answer in e.get("survey_answers") or ():
            if answer.get("text"):
                score = analyzer.polarity_scores(answer["text"])["compound"]
                label = "positive" if score >= 0.05 else "negative" if score <= -0.05 else "neutral"
                keep = ("event_id", "project_id", "timestamp", "user_id", "survey_id", "survey_version")
                rows.append(
                    {k: e[k] for k in keep if k in e}
                    | {
                        "question_id": answer["question_id"],
                        "sentiment_score": score,
                        "sentiment_label": label,
                    }
                    | {"scored_at": e["received_at"]}
                )
    return rows


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    return generate(SyntheticConfig(seed=5, start=yesterday - timedelta(days=30), days=31, users=25))


@pytest.fixture(scope="module")
def warehouse(clickhouse_server: str, dataset: Dataset) -> Iterator[Any]:
    config = dataset.config
    url = f"{clickhouse_server}/pravis_docs_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    with clickhouse.connect(url) as client:
        clickhouse.insert_json_rows(client, "events", json_rows(dataset.all_events()))
        clickhouse.insert_json_rows(client, "events", json_rows(dataset.duplicates))
        clickhouse.insert_json_rows(client, "events", json_rows(demo_resource_samples(dataset)))
        clickhouse.refresh_identity_merges(client)  # as the loader does after a batch with aliases
        clickhouse.insert_json_rows(client, "feedback_scored", json_rows(dataset.scored_feedback))
        clickhouse.insert_json_rows(client, "survey_answer_sentiment", json_rows(scored_answers(dataset)))
        funnel = FunnelDefinition(
            key="browse", steps=[{"event_type": "page_view"}, {"event_type": "feature_use"}]
        )
        row = ["default", funnel.key, 1, funnel.model_dump_json(), datetime.now(UTC)]
        client.insert("funnels", [row], column_names=FUNNEL_COLUMNS)  # so funnel_daily has rows to query
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
    # The synthetic data ends yesterday and holds no alerts, refusals, exposures or segment definitions: those
    # queries only run.
    quiet = (
        title.startswith(("Alerts", "Experiment", "Survey answers per segment")) or "INTERVAL 1 HOUR" in sql
    )
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
            "SELECT day, uniqExact(person_id) FROM user_activity_daily "
            "WHERE project_id = 'default' GROUP BY day"
        ).result_rows
    )

    assert rows
    for day, _feature, users, _events, adoption in rows:
        assert adoption == pytest.approx(round(users / active[day], 3), abs=1e-9)


def test_a_flow_across_login_counts_persons_like_the_identity_model(warehouse, dataset: Dataset) -> None:
    """The voice search before login and the checkout after it are one person's two steps."""
    flow = next(sql for title, sql in QUERIES if title.startswith("Flows across login"))
    got = dict(warehouse.query(flow).result_rows)

    events = [e for e in dataset.all_events() if e["project_id"] == "default"]
    person = persons(events)
    since = datetime.combine(datetime.now(UTC).date() - timedelta(days=30), datetime.min.time(), UTC)
    steps: dict[str, list[tuple[int, int]]] = {}
    for e in events:
        moment = parse_iso(e["timestamp"])
        checkout = e["event_type"] == "button_click" and e.get("button_id") == "checkout"
        if moment >= since and (e["event_type"] == "voice_request" or e["event_type"] == "button_click"):
            step = 1 if e["event_type"] == "voice_request" else 2 if checkout else 0
            steps.setdefault(person(e), []).append((int(moment.timestamp()), step))
    levels: dict[int, int] = {}
    for marks in steps.values():
        searches = [t for t, step in marks if step == 1]
        checkouts = [t for t, step in marks if step == 2]
        level = 2 if any(s <= c <= s + 3600 for s in searches for c in checkouts) else 1 if searches else 0
        levels[level] = levels.get(level, 0) + 1

    assert got == levels
    assert levels[2] >= 4  # the journeys' logins: under raw ids no id reaches the checkout step
