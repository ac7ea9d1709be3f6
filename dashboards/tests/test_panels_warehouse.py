"""Every panel's SQL against a real warehouse holding the synthetic dataset (with duplicate deliveries and
late events), compared with the dataset's known answers computed here in plain Python from the rows. Users are
persons: the rows' persons come from the model of docs/identity.md in tests/support/persons.py."""

import math
import secrets
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import pytest
from pravis_dashboards import panels
from pravis_dashboards.clickhouse import Warehouse
from pravis_local.demo import seed
from pravis_local.synthetic import Dataset, parse_iso

from tests.support.persons import persons

AI_TYPES = {"voice_request", "transcription", "tts", "conversation"}  # schemas/README.md, not the code
INACTIVE = {"api_request", "identify", "alias"}  # not activity (docs/queries.md)


def day_of(row: dict[str, Any]) -> date:
    return parse_iso(row["timestamp"]).date()


def who(row: dict[str, Any]) -> str:
    return row["person"]


def quantile(values: list[float], level: float) -> float:
    xs = sorted(values)
    h = (len(xs) - 1) * level
    low = math.floor(h)
    return xs[low] if low + 1 >= len(xs) else xs[low] + (h - low) * (xs[low + 1] - xs[low])


def close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="module")
def dataset(clickhouse_server: str) -> tuple[Dataset, Warehouse]:
    url = f"{clickhouse_server}/pravis_dash_{secrets.token_hex(4)}"
    return seed(url), Warehouse(url)


@pytest.fixture(scope="module")
def events(dataset) -> list[dict[str, Any]]:
    rows = [e for e in dataset[0].all_events() if e["project_id"] == "default"]
    person = persons(rows)
    return [{**e, "person": person(e)} for e in rows]


@pytest.fixture(scope="module")
def run(dataset):
    data, warehouse = dataset
    view = panels.Params("default", data.config.start, data.end)

    def query(panel_id: str) -> list[dict[str, Any]]:
        columns, rows = warehouse.query(panels.BY_ID[panel_id].sql, view.as_query())
        return [dict(zip(columns, row, strict=True)) for row in rows]

    return query


def active_by_day(events) -> dict[date, set[str]]:
    days: dict[date, set[str]] = defaultdict(set)
    for e in events:
        if e["event_type"] not in INACTIVE and who(e):
            days[day_of(e)].add(who(e))
    return days


def test_every_panel_has_rows(run) -> None:
    for panel in panels.PANELS:
        assert run(panel.id), panel.id


def test_active_users_and_stickiness(run, events) -> None:
    days = active_by_day(events)

    def window(d: date, n: int) -> set[str]:
        return set().union(*(days.get(d - timedelta(i), set()) for i in range(n)))

    expected = {d: (len(days[d]), len(window(d, 7)), len(window(d, 30))) for d in days}
    assert {r["day"]: (r["dau"], r["wau"], r["mau"]) for r in run("active_users")} == expected
    for row in run("stickiness"):
        dau, _, mau = expected[row["day"]]
        assert close(row["stickiness"], dau / mau)


def test_retention_cohorts(run, events, dataset) -> None:
    first: dict[str, date] = {}
    for d, users in sorted(active_by_day(events).items()):
        for user in users:
            first.setdefault(user, d)
    days = active_by_day(events)
    cohorts: dict[date, list[str]] = defaultdict(list)
    for user, d in first.items():
        cohorts[d - timedelta(d.weekday())].append(user)
    rows = {r["cohort_week"]: r for r in run("retention")}
    assert set(rows) == set(cohorts)
    for week, users in cohorts.items():
        eligible = [u for u in users if first[u] + timedelta(1) <= dataset[0].end]
        retained = [u for u in eligible if u in days.get(first[u] + timedelta(1), set())]
        assert rows[week]["cohort_size"] == len(users)
        assert close(rows[week]["d1_rate"], len(retained) / len(eligible))


def test_feedback_score_and_sentiment(run, events, dataset) -> None:
    ratings: dict[date, list[int]] = defaultdict(list)
    for e in events:
        if e["event_type"] == "feedback":
            ratings[day_of(e)].append(e["rating"])
    assert {r["day"]: r["avg_rating"] for r in run("feedback_score")} == pytest.approx(
        {d: sum(v) / len(v) for d, v in ratings.items()}
    )
    latest: dict[str, dict] = {}
    data = dataset[0]
    for s in data.scored_feedback + data.late_scored_feedback:
        if s["project_id"] == "default" and (
            s["event_id"] not in latest or s["scored_at"] > latest[s["event_id"]]["scored_at"]
        ):
            latest[s["event_id"]] = s
    mix: dict[date, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(("positive", "neutral", "negative"), 0)
    )
    for e in events:
        if e["event_type"] == "feedback" and e["event_id"] in latest:
            mix[day_of(e)][latest[e["event_id"]]["sentiment_label"]] += 1
    got = {r["day"]: {k: r[k] for k in ("positive", "neutral", "negative")} for r in run("sentiment")}
    assert got == {d: mix[d] for d in ratings}


def test_ai_success_trend(run, events) -> None:
    by_day: dict[date, list[bool]] = defaultdict(list)
    for e in events:
        if e["event_type"] in AI_TYPES:
            by_day[day_of(e)].append(e["success"])
    rows = run("ai_accuracy")
    assert {r["day"]: r["requests"] for r in rows} == {d: len(v) for d, v in by_day.items()}
    for r in rows:
        assert close(r["success_rate"], sum(by_day[r["day"]]) / len(by_day[r["day"]]))
    assert any(r["accuracy"] is not None for r in rows)


def test_feature_usage_and_adoption(run, events) -> None:
    users: dict[str, set[str]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    daily: dict[tuple[date, str], set[str]] = defaultdict(set)
    for e in events:
        if e["event_type"] == "feature_use":
            users[e["feature_name"]].add(who(e))
            counts[e["feature_name"]] += 1
            daily[(day_of(e), e["feature_name"])].add(who(e))
    days = active_by_day(events)
    active = set().union(*days.values())
    rows = run("feature_usage")
    assert [r["feature_name"] for r in rows] == sorted(users, key=lambda f: (-len(users[f]), f))
    for r in rows:
        assert (r["users"], r["events"]) == (len(users[r["feature_name"]]), counts[r["feature_name"]])
        assert close(r["adoption"], len(users[r["feature_name"]]) / len(active))
    adoption = {(r["day"], r["feature_name"]): r["adoption"] for r in run("feature_adoption")}
    assert adoption == pytest.approx({k: len(v) / len(days[k[0]]) for k, v in daily.items()})


def sessions(events) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        if e.get("session_id") and e["event_type"] not in INACTIVE and who(e):
            found[e["session_id"]].append(e)
    return found


def test_sessions_per_user_and_duration(run, events) -> None:
    per_day: dict[date, list[str]] = defaultdict(list)
    owners: dict[date, set[str]] = defaultdict(set)
    buckets = dict.fromkeys(("< 10 s", "10 s - 1 min", "1 - 5 min", "5 - 15 min", "15 - 30 min"), 0)
    buckets |= {"30 min - 1 h": 0, "1 h +": 0}
    limits = (10, 60, 300, 900, 1800, 3600, math.inf)
    for rows in sessions(events).values():
        rows.sort(key=lambda r: (parse_iso(r["timestamp"]), r["event_id"]))
        first = parse_iso(rows[0]["timestamp"])
        last = parse_iso(rows[-1]["timestamp"])
        per_day[first.date()].append(who(rows[0]))
        owners[first.date()].add(who(rows[0]))
        seconds = (last - first).total_seconds()
        name = list(buckets)[next(i for i, limit in enumerate(limits) if seconds < limit)]
        buckets[name] += 1
    rows = {r["day"]: r for r in run("sessions_per_user")}
    assert {d: r["sessions"] for d, r in rows.items()} == {d: len(v) for d, v in per_day.items()}
    for d, r in rows.items():
        assert close(r["sessions_per_user"], len(per_day[d]) / len(owners[d]))
    assert {r["duration"]: r["sessions"] for r in run("session_duration")} == buckets


def test_voice_rates(run, events) -> None:
    voice: dict[date, list[bool]] = defaultdict(list)
    for e in events:
        if e["event_type"] == "voice_request":
            voice[day_of(e)].append(e["success"])
    rows = run("voice")
    assert {r["day"]: r["voice_requests"] for r in rows} == {d: len(v) for d, v in voice.items()}
    for r in rows:
        assert close(r["success_rate"], sum(voice[r["day"]]) / len(voice[r["day"]]))


def test_experiment_results_show_the_latest_computation(run) -> None:
    rows = run("experiments")
    assert [(r["arm"], r["conversion_rate"]) for r in rows] == [
        ("voice_button / control / checkout", 0.2),
        ("voice_button / big_button / checkout", 0.25),
    ]


def api_rows(events) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == "api_request"]


def test_api_latency_error_rate_and_cache(run, events) -> None:
    by_day: dict[date, list[dict]] = defaultdict(list)
    by_route: dict[str, list[dict]] = defaultdict(list)
    by_day_route: dict[tuple[date, str], list[dict]] = defaultdict(list)
    for e in api_rows(events):
        route = f"{e['method']} {e['endpoint']}"
        by_day[day_of(e)].append(e)
        by_route[route].append(e)
        by_day_route[(day_of(e), route)].append(e)
    for r in run("api_latency"):
        durations = [e["duration_ms"] for e in by_day[r["day"]]]
        for level, column in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
            assert close(r[column], quantile(durations, level)), (r["day"], column)
    endpoints = run("api_endpoints")
    assert {r["route"]: r["requests"] for r in endpoints} == {k: len(v) for k, v in by_route.items()}
    for r in endpoints:
        rows = by_route[r["route"]]
        assert close(r["p99_ms"], quantile([e["duration_ms"] for e in rows], 0.99))
        assert close(r["error_rate"], sum(e["status"] >= 500 for e in rows) / len(rows))
    errors = {(r["day"], r["route"]): r["error_rate"] for r in run("api_errors")}
    assert errors == pytest.approx(
        {k: sum(e["status"] >= 500 for e in v) / len(v) for k, v in by_day_route.items()}
    )
    for r in run("cache_hits"):
        reported = [e["cache_hit"] for e in by_day[r["day"]] if e.get("cache_hit") is not None]
        assert close(r["cache_hit_ratio"], sum(reported) / len(reported) if reported else None)


def test_ai_per_model(run, events) -> None:
    by_model: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        if e["event_type"] in AI_TYPES:
            by_model[e.get("model_used") or "(none)"].append(e)
    for panel in ("ai_success_by_model", "ai_latency_by_model"):
        rows = run(panel)
        assert [r["model"] for r in rows] == sorted(by_model)
        for r in rows:
            mine = by_model[r["model"]]
            assert r["requests"] == len(mine)
            assert close(r["success_rate"], sum(e["success"] for e in mine) / len(mine))
            assert close(r["p95_ms"], quantile([e["request_duration_ms"] for e in mine], 0.95))


def test_alert_history_and_list(run, dataset) -> None:
    start = dataset[0].config.start
    assert {(r["day"], r["severity"]): r["alerts"] for r in run("alert_history")} == {
        (start + timedelta(2), "warning"): 1,
        (start + timedelta(2), "critical"): 1,
        (dataset[0].end, "critical"): 1,
    }
    rows = run("alert_list")
    assert [r["alert_id"] for r in rows] == ["demo-alert-2", "demo-alert-1", "demo-alert-0"]
    assert rows[0]["resolved"] is None and rows[1]["resolved"] is not None
