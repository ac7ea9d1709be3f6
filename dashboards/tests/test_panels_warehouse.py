"""Every panel's SQL against a real warehouse holding the synthetic dataset (with duplicate deliveries and
late events), compared with the dataset's known answers computed here in plain Python from the rows. Users are
persons: the rows' persons come from the model of docs/identity.md in tests/support/persons.py."""

import math
import re
import secrets
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from pravis_dashboards import panels
from pravis_dashboards.clickhouse import Warehouse
from pravis_local.demo import DEMO_SURVEY, demo_resource_samples, seed
from pravis_local.synthetic import Dataset, parse_iso
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

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

    def query(
        panel_id: str, view: panels.Params = view, among: tuple[panels.Panel, ...] = panels.PANELS
    ) -> list[dict[str, Any]]:
        panel = next(p for p in among if p.id == panel_id)
        if panel.per_survey:
            panel = panels.with_survey(panel, DEMO_SURVEY.key)
        columns, rows = warehouse.query(panel.sql, {**view.as_query(), **panel.parameters})
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


EUR_PER = {"EUR": Decimal(1), "USD": Decimal("0.92"), "GBP": Decimal("1.17")}
"""The demo's exchange rates (pravis_local.demo.DEMO_RATES), as the operator would have loaded them."""


def first_by_order(events, event_type: str) -> list[dict[str, Any]]:
    first: dict[str, dict] = {}
    for e in sorted((e for e in events if e["event_type"] == event_type), key=lambda e: e["timestamp"]):
        first.setdefault(e["order_id"], e)
    return list(first.values())


def test_revenue_in_the_reporting_currency_and_the_ai_split(run, events) -> None:
    def eur(e: dict) -> Decimal:
        return (Decimal(e["revenue"]) * EUR_PER[e["currency"]]).quantize(Decimal("0.0001"), ROUND_DOWN)

    orders, refunds = first_by_order(events, "order_completed"), first_by_order(events, "order_refunded")
    revenue, refunded = defaultdict(Decimal), defaultdict(Decimal)
    for e in orders:
        revenue[day_of(e)] += eur(e)
    for e in refunds:
        refunded[day_of(e)] += eur(e)
    rows = {r["day"]: r for r in run("revenue")}
    assert {d: r["revenue"] for d, r in rows.items() if r["orders"]} == revenue
    assert {d: r["net_revenue"] for d, r in rows.items()} == {
        d: revenue[d] - refunded[d] for d in set(revenue) | set(refunded)
    }
    assert all(r["unconverted"] == 0 and r["reporting_currency"] == "EUR" for r in rows.values())

    ai_sessions = {e["session_id"] for e in events if e["event_type"] in AI_TYPES and e.get("session_id")}
    active, assisted = active_by_day(events), defaultdict(set)
    for e in events:
        if e["event_type"] in AI_TYPES:
            assisted[day_of(e)].add(who(e))
    split = {r["ai_session"]: r for r in run("revenue_ai")}
    for name, used in (("ai", True), ("no_ai", False)):
        mine = [e for e in orders if (e.get("session_id") in ai_sessions) is used]
        buyer_days = {(day_of(e), who(e)) for e in mine}
        users = sum(
            len(assisted[d]) if used else len(active[d]) - len(assisted[d]) for d in {day_of(e) for e in mine}
        )
        assert split[name]["orders"] == len(mine)
        assert split[name]["total_revenue"] == sum((eur(e) for e in mine), Decimal(0))
        assert close(split[name]["conversion"], len(buyer_days) / users)


def test_error_patterns_group_failures_by_fingerprint(run, events, dataset) -> None:
    """Fingerprints from a model written here: type + message with numbers and quoted values stripped +
    endpoint/model (the normalisation itself is tested on a table of messages in pravis_schemas)."""

    def pattern(e: dict) -> tuple | None:
        if e["event_type"] == "error":
            message = re.sub(
                r"[0-9]+",
                "<n>",
                re.sub(r"'[^']*'|\"[^\"]*\"", "<str>", (e.get("error_message") or "").lower()),
            )
            return ("error", e["error_type"], message, "")
        if e["event_type"] == "api_request" and e["status"] >= 500:
            return ("api", e.get("error_type") or f"HTTP {e['status']}", "", f"{e['method']} {e['endpoint']}")
        if e["event_type"] in AI_TYPES and not e["success"]:
            return (
                "ai",
                e.get("error_type") or "failure",
                "",
                f"{e['event_type']} {e.get('model_used') or ''}",
            )
        return None

    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in events:
        if (key := pattern(e)) is not None:
            groups[key].append(e)
    rows = run("error_patterns")
    start, days = dataset[0].config.start, dataset[0].config.days

    assert len(rows) == min(50, len(groups))
    assert [r["events"] for r in rows] == sorted((len(v) for v in groups.values()), reverse=True)[: len(rows)]
    for r in rows:
        mine = groups[(r["kind"], r["error_type"], r["message"], r["location"])]
        assert r["events"] == len(mine) == sum(r["daily"]) and len(r["daily"]) == days
        assert r["daily"] == [sum(1 for e in mine if day_of(e) == start + timedelta(i)) for i in range(days)]
        assert r["first_seen"].replace(tzinfo=None) == min(parse_iso(e["timestamp"]) for e in mine).replace(
            tzinfo=None
        )
    assert any(r["kind"] == "error" and "<n>" in r["message"] for r in rows)


def test_resource_panels_per_service_and_saturation(run, dataset) -> None:
    samples = demo_resource_samples(dataset[0])
    per_hour: dict[tuple, list[float]] = defaultdict(list)
    for s in samples:
        moment = parse_iso(s["timestamp"])
        per_hour[(moment.replace(minute=0, second=0, microsecond=0, tzinfo=None), s["service"])].append(s)
    cpu = {(r["hour"].replace(tzinfo=None), r["service"]): r["cpu_percent"] for r in run("resource_cpu")}
    assert cpu == pytest.approx({k: sum(s["cpu_percent"] for s in v) for k, v in per_hour.items()})
    memory = {(r["hour"].replace(tzinfo=None), r["service"]): r["rss_bytes"] for r in run("resource_memory")}
    assert memory == pytest.approx({k: sum(s["rss_bytes"] for s in v) for k, v in per_hour.items()})

    top = run("resource_top")
    by_process: dict[str, list[dict]] = defaultdict(list)
    for s in samples:
        by_process[f"{s['service']} @ {s['host']} #{s['pid']}"].append(s)
    means = {p: sum(s["cpu_percent"] for s in v) / len(v) for p, v in by_process.items()}
    assert [r["process"] for r in top] == sorted(means, key=lambda p: (-means[p], p))
    for r in top:
        mine = by_process[r["process"]]
        assert close(r["max_cpu"], max(s["cpu_percent"] for s in mine))
        assert r["max_rss_bytes"] == max(s["rss_bytes"] for s in mine)
        assert close(r["p95_loop_lag_ms"], quantile([s["loop_lag_ms"] for s in mine], 0.95))
    warnings = {r["process"]: r["warning"] for r in top}
    assert warnings == {
        "shop-api @ web-1 #4101": "",
        "shop-api @ web-2 #4102": "CPU saturated",
        "pravis-gateway @ ingest-1 #311": "",
    }


def test_saturation_settings_decide_which_processes_are_flagged(run, dataset) -> None:
    """Thresholds lowered so every warning fires somewhere: the panel flags exactly the processes a model of
    the documented rule (max CPU, p95 loop lag, max descriptors, max RSS at or above the setting) flags."""
    by_process: dict[str, list[dict]] = defaultdict(list)
    for s in demo_resource_samples(dataset[0]):
        by_process[f"{s['service']} @ {s['host']} #{s['pid']}"].append(s)
    lowered = panels.Saturation(cpu_percent=45, loop_lag_ms=7.5, open_fds=199, rss_bytes=399 * 2**20)

    def flagged(samples: list[dict], t: panels.Saturation) -> str:
        warnings = [
            ("CPU saturated", max(s["cpu_percent"] for s in samples) >= t.cpu_percent),
            ("event loop lagging", quantile([s["loop_lag_ms"] for s in samples], 0.95) >= t.loop_lag_ms),
            ("file descriptors", max(s["open_fds"] for s in samples) >= t.open_fds),
            ("memory", max(s["rss_bytes"] for s in samples) >= t.rss_bytes),
        ]
        return ", ".join(name for name, hit in warnings if hit)

    for thresholds in (panels.Saturation(), lowered):
        rows = run("resource_top", among=panels.configured(thresholds))
        assert {r["process"]: r["warning"] for r in rows} == {
            p: flagged(samples, thresholds) for p, samples in by_process.items()
        }
    rule = next(p for p in panels.configured(lowered) if p.id == "resource_top").description
    assert "CPU reaches 45% of a core, the p95 event-loop lag 7.5 ms, open descriptors 199" in rule
    assert "resident memory 399 MiB" in rule
    shown = {r["process"]: r["warning"] for r in run("resource_top", among=panels.configured(lowered))}
    assert shown != {r["process"]: r["warning"] for r in run("resource_top")}
    assert {w for warning in shown.values() for w in warning.split(", ") if w} == {
        "CPU saturated",
        "event loop lagging",
        "file descriptors",
        "memory",
    }


# Issue 23: the survey panels and the feature-request board, against the survey rows of the demo seed.
def survey_answers(events, first: date, last: date) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(event, answer) of every answer to the demo survey in the days first..last."""
    return [
        (e, a)
        for e in events
        if e["event_type"] == "survey_answered"
        and e["survey_id"] == DEMO_SURVEY.key
        and first <= day_of(e) <= last
        for a in e["survey_answers"]
    ]


def period_of(d: date, first: date, last: date) -> date:
    return d if (last - first).days < 14 else d - timedelta(d.weekday())  # docs: weekly over 2 weeks


@pytest.mark.parametrize("days", [21, 7])
def test_survey_nps_trend_and_response_rate(run, events, dataset, days) -> None:
    last = dataset[0].end
    first = last - timedelta(days=days - 1)
    view = panels.Params("default", first, last)
    bands: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for e, a in survey_answers(events, first, last):
        if a["question_id"] == "nps":
            band = 0 if a["value"] >= 9 else 2 if a["value"] <= 6 else 1
            bands[period_of(day_of(e), first, last)][band] += 1
    trend = {r["period"]: r for r in run("survey_nps", view)}
    assert set(trend) == set(bands) and len(trend) >= 3
    for period, (promoters, passives, detractors) in bands.items():
        row = trend[period]
        assert row["responses"] == promoters + passives + detractors
        assert (row["promoters_n"], row["detractors_n"]) == (promoters, detractors)
        assert close(row["nps"], 100 * (promoters - detractors) / (promoters + passives + detractors))

    counts: dict[date, Counter] = defaultdict(Counter)
    for e in events:
        if e.get("survey_id") == DEMO_SURVEY.key and first <= day_of(e) <= last:
            counts[period_of(day_of(e), first, last)][e["event_type"]] += 1
    rates = {r["period"]: r for r in run("survey_response_rate", view)}
    assert set(rates) == set(counts)
    for period, c in counts.items():
        row = rates[period]
        assert (row["shown_n"], row["dismissed_n"], row["answered_n"]) == (
            c["survey_shown"],
            c["survey_dismissed"],
            c["survey_answered"],
        )
        assert close(
            row["response_rate"], c["survey_answered"] / c["survey_shown"] if c["survey_shown"] else None
        )


def test_survey_rating_distribution(run, events, dataset) -> None:
    values = Counter(
        a["value"]
        for _, a in survey_answers(events, dataset[0].config.start, dataset[0].end)
        if a.get("value") is not None
    )
    rows = run("survey_ratings")
    assert [(r["value"], r["question"]) for r in rows] == [(v, "nps") for v in sorted(values)]
    assert {r["value"]: r["answers"] for r in rows} == values
    total = sum(values.values())
    assert all(close(r["share"], values[r["value"]] / total) for r in rows)


def test_survey_text_answers_newest_first_with_their_sentiment(run, events, dataset) -> None:
    vader = SentimentIntensityAnalyzer()  # the stream tier's analyser, not the demo's table of its scores
    texts = [
        (e["timestamp"], a["text"])
        for e, a in survey_answers(events, dataset[0].config.start, dataset[0].end)
        if a.get("text")
    ]
    newest = sorted(texts, reverse=True)[: panels.TEXT_ANSWERS_SHOWN]
    rows = run("survey_text_answers")
    assert [(r["timestamp"], r["text"]) for r in rows] == [
        (parse_iso(t).replace(tzinfo=None), text) for t, text in newest
    ]
    for r in rows:
        score = vader.polarity_scores(r["text"])["compound"]
        assert close(r["sentiment_score"], score)
        assert r["sentiment_label"] == (
            "positive" if score >= 0.05 else "negative" if score <= -0.05 else "neutral"
        )
    assert {r["sentiment_label"] for r in rows} >= {"positive", "negative"}


def test_feature_request_board(run, events) -> None:
    def normalised(title: str) -> str:
        return " ".join("".join(c if c.isalnum() else " " for c in title.lower()).split())

    voters: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e["event_type"] in ("feature_request", "feature_request_vote"):
            voters[normalised(e["feature_request_title"])].add(who(e))
    recent = datetime.now(UTC).date() - timedelta(days=30)
    active_days = {
        (who(e), day_of(e)) for e in events if e["event_type"] not in INACTIVE and day_of(e) >= recent
    }
    active = Counter(person for person, _ in active_days)
    statuses = {"dark mode": "planned", "apple pay": "done"}  # the demo's two status changes
    rows = run("feature_requests")
    expected = sorted(voters, key=lambda r: (-len(voters[r]), -sum(max(1, active[v]) for v in voters[r]), r))
    assert [r["request"] for r in rows] == expected
    for r in rows:
        assert r["votes"] == len(voters[r["request"]])
        assert r["weighted_votes"] == sum(max(1, active[v]) for v in voters[r["request"]])
        assert r["status"] == statuses.get(r["request"], "open")
        assert normalised(r["title"]) == r["request"]
