"""The system health rule against a table of cases whose colours were decided by hand from the documented
rule (docs/production.md "System health"), not by running the code: each case is a situation an operator
would recognise, with the colour they should see."""

import json
from typing import Any

import pytest
from pravis_dashboards.system_health import (
    STAGES,
    Live,
    Monitored,
    Thresholds,
    read_monitor_metrics,
    summarize,
)
from pravis_schemas.live_api import LiveAlerts, LiveSummary

from .live_api_bodies import ALERTS_BODY, SUMMARY_BODY

THRESHOLDS = Thresholds(
    lag_amber=1000,
    lag_red=10000,
    error_rate_amber=0.01,
    error_rate_red=0.05,
    p95_amber_ms=1000,
    p95_red_ms=3000,
    ingest_ratio_amber=0.5,
    ingest_ratio_red=0.1,
    ingest_min_normal_per_minute=1.0,
)
ALL_UP = {stage: True for stage in STAGES}
CALM_LAG = {"pravis-loader": 5, "pravis-stream": 0}


def summary(per_minute: float, endpoints: dict[str, dict[str, Any]] | None = None) -> LiveSummary:
    body = json.loads(SUMMARY_BODY)
    body["events"]["per_minute"] = per_minute
    if endpoints is not None:
        body["api"]["endpoints"] = {
            path: {
                "requests": 100,
                "server_errors": 0,
                "client_errors": 0,
                "error_rate": stats.get("error_rate", 0.0),
                "cache_hit_ratio": None,
                "latency_ms": (
                    None
                    if stats.get("p95") is None
                    else {"p50": 1.0, "p95": stats["p95"], "p99": stats["p95"]}
                ),
            }
            for path, stats in endpoints.items()
        }
    return LiveSummary.model_validate(body)


def live(now: float = 10.0, normal: float = 10.0, endpoints=None, alerts: list | None = None) -> Live:
    firing = json.loads(ALERTS_BODY)
    firing["firing"] = [
        {**firing["firing"][0], "severity": severity, "labels": {"endpoint": path}}
        for path, severity in alerts or []
    ]
    return Live(summary(now, endpoints), summary(normal), LiveAlerts.model_validate(firing))


def colours(monitored: Monitored | None, answer: Live | None) -> dict[str, str]:
    return {
        status.name: status.status
        for status in summarize(monitored, answer, THRESHOLDS, "pravis-loader", "pravis-stream")
    }


STAGE_CASES = [
    # (case, services up, lag per group, live answer, expected colours of the stages that differ from green)
    ("all well", ALL_UP, CALM_LAG, live(), {}),
    ("monitor silent", None, None, live(), dict.fromkeys(STAGES, "unknown")),
    ("loader down", ALL_UP | {"loader": False}, CALM_LAG, live(), {"loader": "red"}),
    (
        "warehouse down, live silent",
        ALL_UP | {"warehouse": False},
        CALM_LAG,
        None,
        {"warehouse": "red", "gateway": "unknown", "*": "unknown"},
    ),
    ("lag unread", ALL_UP, None, live(), {"loader": "unknown", "stream": "unknown"}),
    ("loader lag at amber", ALL_UP, {**CALM_LAG, "pravis-loader": 1000}, live(), {"loader": "amber"}),
    ("loader lag under amber", ALL_UP, {**CALM_LAG, "pravis-loader": 999}, live(), {}),
    ("stream lag at red", ALL_UP, {**CALM_LAG, "pravis-stream": 10000}, live(), {"stream": "red"}),
    ("stream never committed", ALL_UP, {"pravis-loader": 0}, live(), {"stream": "unknown"}),
    (
        "down beats unknown lag",
        ALL_UP | {"loader": False},
        None,
        live(),
        {"loader": "red", "stream": "unknown"},
    ),
    (
        "scheduler not checked",
        {s: True for s in STAGES if s != "scheduler"},
        CALM_LAG,
        live(),
        {"scheduler": "unknown"},
    ),
    ("ingest halved", ALL_UP, CALM_LAG, live(now=5.0, normal=10.0), {"gateway": "amber"}),
    ("ingest a bit low", ALL_UP, CALM_LAG, live(now=5.1, normal=10.0), {}),
    ("ingest stopped", ALL_UP, CALM_LAG, live(now=0.0, normal=10.0), {"gateway": "red"}),
    ("ingest at a tenth", ALL_UP, CALM_LAG, live(now=1.0, normal=10.0), {"gateway": "red"}),
    ("quiet project stopped", ALL_UP, CALM_LAG, live(now=0.0, normal=0.9), {}),
    (
        "gateway down and live silent",
        ALL_UP | {"gateway": False},
        CALM_LAG,
        None,
        {"gateway": "red", "*": "unknown"},
    ),
]


@pytest.mark.parametrize(
    ("up", "lag", "answer", "differs"),
    [case[1:] for case in STAGE_CASES],
    ids=[case[0] for case in STAGE_CASES],
)
def test_stage_colours(up, lag, answer, differs) -> None:
    monitored = None if up is None else Monitored(up, lag)
    expected = {stage: "green" for stage in STAGES} | ({"*": "unknown"} if answer is None else {}) | differs
    got = colours(monitored, answer)
    assert {name: got[name] for name in expected} == expected


ENDPOINT_CASES = [
    ("fine", {"error_rate": 0.0, "p95": 80.0}, [], "green"),
    ("error rate at amber", {"error_rate": 0.01, "p95": 80.0}, [], "amber"),
    ("error rate just under amber", {"error_rate": 0.0099, "p95": 80.0}, [], "green"),
    ("error rate at red", {"error_rate": 0.05, "p95": 80.0}, [], "red"),
    ("slow", {"error_rate": 0.0, "p95": 1000.0}, [], "amber"),
    ("very slow", {"error_rate": 0.0, "p95": 3000.0}, [], "red"),
    ("no latency measured, no errors", {"error_rate": None, "p95": None}, [], "green"),
    ("warning alert on it", {"error_rate": 0.0, "p95": 80.0}, [("/pay", "warning")], "amber"),
    ("critical alert on it", {"error_rate": 0.0, "p95": 80.0}, [("/pay", "critical")], "red"),
    ("critical alert elsewhere", {"error_rate": 0.0, "p95": 80.0}, [("/other", "critical")], "green"),
    ("slow and a warning", {"error_rate": 0.02, "p95": 5000.0}, [("/pay", "warning")], "red"),
]


@pytest.mark.parametrize(
    ("stats", "alerts", "expected"),
    [case[1:] for case in ENDPOINT_CASES],
    ids=[case[0] for case in ENDPOINT_CASES],
)
def test_endpoint_colours(stats, alerts, expected) -> None:
    answer = live(endpoints={"/pay": stats}, alerts=alerts)
    assert colours(Monitored(ALL_UP, CALM_LAG), answer)["/pay"] == expected


def test_every_status_states_its_rule_with_the_thresholds_in_force() -> None:
    statuses = summarize(Monitored(ALL_UP, CALM_LAG), live(), THRESHOLDS, "pravis-loader", "pravis-stream")
    by_name = {status.name: status for status in statuses}
    assert "lag ≥ 10000" in by_name["loader"].rule and "pravis-loader" in by_name["loader"].rule
    assert "10%" in by_name["gateway"].rule and "50%" in by_name["gateway"].rule
    assert "3000 ms" in by_name["/pay"].rule and "5%" in by_name["/pay"].rule
    assert all(status.rule and status.reason for status in statuses)


MONITOR_TEXT = """# HELP pravis_consumer_lag Records in the partition after the group's committed offset
# TYPE pravis_consumer_lag gauge
pravis_consumer_lag{group="pravis-loader",partition="0",topic="events"} 3.0
pravis_consumer_lag{group="pravis-loader",partition="1",topic="events"} 4.0
pravis_consumer_lag{group="pravis-stream",partition="0",topic="events"} 0.0
# HELP pravis_service_up 1 when the service's health check passes
# TYPE pravis_service_up gauge
pravis_service_up{service="broker"} 1.0
pravis_service_up{service="loader"} 0.0
# HELP pravis_monitor_collect_failed 1 when the last scrape could not read that part
# TYPE pravis_monitor_collect_failed gauge
pravis_monitor_collect_failed{part="lag"} 0.0
"""


def test_monitor_metrics_are_read_per_service_and_summed_per_group() -> None:
    monitored = read_monitor_metrics(MONITOR_TEXT)
    assert monitored.up == {"broker": True, "loader": False}
    assert monitored.lag == {"pravis-loader": 7, "pravis-stream": 0}


def test_lag_the_monitor_failed_to_read_is_unread_not_zero() -> None:
    failed = MONITOR_TEXT.replace(
        'pravis_monitor_collect_failed{part="lag"} 0.0', 'pravis_monitor_collect_failed{part="lag"} 1.0'
    )
    assert read_monitor_metrics(failed).lag is None


def test_reasons_show_rates_as_percentages() -> None:
    answer = live(endpoints={"/pay": {"error_rate": 0.02, "p95": 80.0}})
    statuses = summarize(Monitored(ALL_UP, CALM_LAG), answer, THRESHOLDS, "pravis-loader", "pravis-stream")
    assert [s.reason for s in statuses if s.name == "/pay"] == ["error rate 2.0% ≥ 1%"]


MONITORED_CASES = [
    # (case, endpoints that served, alerts, expected colour per monitored path and any other row shown)
    ("monitored and serving", {"/pay": {"error_rate": 0.0, "p95": 80.0}}, [], {"/pay": "green"}),
    ("monitored and silent", {}, [], {"/pay": "amber"}),
    ("silent with a critical alert on it", {}, [("/pay", "critical")], {"/pay": "red"}),
    ("silent with a warning on it", {}, [("/pay", "warning")], {"/pay": "amber"}),
    (
        "silent beside a served one",
        {"/search": {"error_rate": 0.0, "p95": 80.0}},
        [],
        {"/pay": "amber", "/search": "green"},
    ),
    ("monitored and slow", {"/pay": {"error_rate": 0.0, "p95": 3000.0}}, [], {"/pay": "red"}),
]


@pytest.mark.parametrize(
    ("served", "alerts", "expected"),
    [case[1:] for case in MONITORED_CASES],
    ids=[case[0] for case in MONITORED_CASES],
)
def test_monitored_endpoints_always_show(served, alerts, expected) -> None:
    statuses = summarize(
        Monitored(ALL_UP, CALM_LAG),
        live(endpoints=served, alerts=alerts),
        THRESHOLDS,
        "pravis-loader",
        "pravis-stream",
        ["/pay"],
    )
    assert {s.name: s.status for s in statuses if s.kind == "endpoint"} == expected


def test_a_silent_monitored_endpoint_says_why_and_states_the_rule() -> None:
    statuses = summarize(
        Monitored(ALL_UP, CALM_LAG),
        live(endpoints={}),
        THRESHOLDS,
        "pravis-loader",
        "pravis-stream",
        ["/pay"],
    )
    pay = next(s for s in statuses if s.name == "/pay")
    assert pay.reason == "no requests in the last 5 min"
    assert "amber: monitored, and no request in the last 5 min" in pay.rule


def test_without_the_live_api_monitored_endpoints_are_unknown_one_by_one() -> None:
    statuses = summarize(
        Monitored(ALL_UP, CALM_LAG), None, THRESHOLDS, "pravis-loader", "pravis-stream", ["/search", "/pay"]
    )
    endpoints = [(s.name, s.status) for s in statuses if s.kind == "endpoint"]
    assert endpoints == [("/pay", "unknown"), ("/search", "unknown"), ("*", "unknown")]


def test_an_unmonitored_endpoint_that_served_nothing_is_not_shown() -> None:
    statuses = summarize(
        Monitored(ALL_UP, CALM_LAG), live(endpoints={}), THRESHOLDS, "pravis-loader", "pravis-stream"
    )
    assert [s for s in statuses if s.kind == "endpoint"] == []
