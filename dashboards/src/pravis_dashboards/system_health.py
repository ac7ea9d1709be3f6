"""The system health summary (pure: no I/O): one green/amber/red status per pipeline stage and per API
endpoint, from what the stack monitor's `/metrics` (services up, consumer lag) and the live API (ingest rate,
error rate, p95, open alerts) already answer.

Each status comes from the worst of its checks. A check whose source did not answer is unknown, and unknown
beats green and amber: a summary must never look healthy because nothing was read. Only a known red beats
unknown (a service the monitor sees down is red whatever else is missing). Each status carries the rule that
set it, worded from the thresholds in force, so the page shows the rule next to the colour."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pravis_schemas.live_api import LiveAlerts, LiveSummary
from prometheus_client.parser import text_string_to_metric_families

Status = Literal["green", "amber", "red", "unknown"]

STAGES = ("gateway", "broker", "stream", "loader", "warehouse", "scheduler")
"""The pipeline stages, in the order events flow through them; names as the monitor's `service` label."""

STAGE_TITLES = {
    "gateway": "Ingest gateway",
    "broker": "Broker",
    "stream": "Stream tier",
    "loader": "Loader",
    "warehouse": "Warehouse",
    "scheduler": "Scheduler",
}


@dataclass(frozen=True)
class Thresholds:
    lag_amber: int
    lag_red: int
    error_rate_amber: float
    error_rate_red: float
    p95_amber_ms: float
    p95_red_ms: float
    ingest_ratio_amber: float
    ingest_ratio_red: float
    ingest_min_normal_per_minute: float
    """Below this normal rate a project is too quiet for a drop to mean anything: the ingest check passes."""


@dataclass(frozen=True)
class Check:
    status: Status
    reason: str


@dataclass(frozen=True)
class Monitored:
    """What the monitor's `/metrics` said: each service's health check, and lag summed per consumer group
    (`lag` None when the monitor could not read it from the broker)."""

    up: Mapping[str, bool]
    lag: Mapping[str, int] | None


@dataclass(frozen=True)
class Live:
    """The live API's answers for one project: the last 5 minutes, the last hour (the normal rate) and the
    alerts firing now."""

    recent: LiveSummary
    hour: LiveSummary
    alerts: LiveAlerts


@dataclass(frozen=True)
class ComponentStatus:
    kind: Literal["stage", "endpoint"]
    name: str
    title: str
    status: Status
    reason: str
    rule: str


def combine(checks: Iterable[Check]) -> Check:
    """Red if any check is red; otherwise unknown if any is unknown; otherwise the worst of amber and green.
    The reason is that of the deciding checks."""
    checks = list(checks)
    for status in ("red", "unknown", "amber"):
        deciding = [check.reason for check in checks if check.status == status]
        if deciding:
            return Check(status, "; ".join(deciding))
    return Check("green", "; ".join(check.reason for check in checks))


def level(
    value: float, amber: float, red: float, what: str, shown: Callable[[float], str] = "{:g}".format
) -> Check:
    """A figure where higher is worse: red at or above `red`, amber at or above `amber`."""
    if value >= red:
        return Check("red", f"{what} ≥ {shown(red)}")
    if value >= amber:
        return Check("amber", f"{what} ≥ {shown(amber)}")
    return Check("green", f"{what} < {shown(amber)}")


def up_check(service: str, monitored: Monitored | None) -> Check:
    if monitored is None:
        return Check("unknown", "the stack monitor did not answer")
    if service not in monitored.up:
        return Check("unknown", f"the monitor does not check {service}")
    return Check("green", "up") if monitored.up[service] else Check("red", "health check fails")


def lag_check(group: str, monitored: Monitored | None, thresholds: Thresholds) -> Check:
    if monitored is None or monitored.lag is None:
        return Check("unknown", "consumer lag not read")
    if group not in monitored.lag:
        return Check("unknown", f"group {group} has committed nothing")
    lag = monitored.lag[group]
    return level(lag, thresholds.lag_amber, thresholds.lag_red, f"lag {lag}")


def ingest_check(live: Live | None, thresholds: Thresholds) -> Check:
    if live is None:
        return Check("unknown", "live API did not answer")
    now, normal = live.recent.events.per_minute, live.hour.events.per_minute
    if normal < thresholds.ingest_min_normal_per_minute:
        return Check("green", f"quiet project ({normal:.1f}/min in the last hour)")
    ratio = now / normal
    what = f"{now:.1f}/min = {ratio:.0%} of the hour's {normal:.1f}/min"
    if ratio <= thresholds.ingest_ratio_red:
        return Check("red", what)
    if ratio <= thresholds.ingest_ratio_amber:
        return Check("amber", what)
    return Check("green", what)


def stage_rules(thresholds: Thresholds, loader_group: str, stream_group: str) -> dict[str, str]:
    """The rule of each stage, in words, as shown next to its status."""
    down = "red: health check fails; unknown: the monitor does not answer"
    lag = (
        f"red: lag ≥ {thresholds.lag_red}; amber: lag ≥ {thresholds.lag_amber}; "
        "unknown: lag unread or the group has committed nothing"
    )
    return {
        "gateway": (
            f"{down}; red: events/min in the last 5 min ≤ {thresholds.ingest_ratio_red:.0%} of the last "
            f"hour's; amber: ≤ {thresholds.ingest_ratio_amber:.0%} (not judged below "
            f"{thresholds.ingest_min_normal_per_minute:g}/min); unknown: live API does not answer"
        ),
        "broker": down,
        "stream": f"{down}; group {stream_group}: {lag}",
        "loader": f"{down}; group {loader_group}: {lag}",
        "warehouse": down,
        "scheduler": down,
    }


def endpoint_rule(thresholds: Thresholds, monitored: bool) -> str:
    """The rule of an endpoint row; a monitored endpoint's adds what its silence means."""
    silent = "; amber: monitored, and no request in the last 5 min" if monitored else ""
    return (
        f"last 5 min: red: error rate ≥ {thresholds.error_rate_red:.0%} or p95 ≥ "
        f"{thresholds.p95_red_ms:g} ms or a critical alert on it; amber: error rate ≥ "
        f"{thresholds.error_rate_amber:.0%} or p95 ≥ "
        f"{thresholds.p95_amber_ms:g} ms or another alert on it{silent}; unknown: live API does not answer"
    )


def alert_checks(path: str, live: Live) -> list[Check]:
    return [
        Check("red" if alert.severity == "critical" else "amber", f"{alert.severity} {alert.metric}")
        for alert in live.alerts.firing
        if alert.labels.get("endpoint") == path
    ]


def silent_endpoint_checks(path: str, live: Live) -> list[Check]:
    """A monitored endpoint that served nothing: amber, not unknown, since the live API answered and the
    silence is the finding (the API may be unreachable, or only idle); an alert on it still counts."""
    return [Check("amber", "no requests in the last 5 min"), *alert_checks(path, live)]


def endpoint_checks(path: str, live: Live, thresholds: Thresholds) -> list[Check]:
    stats = live.recent.api.endpoints[path]
    checks = []
    if stats.error_rate is not None:
        checks.append(
            level(
                stats.error_rate,
                thresholds.error_rate_amber,
                thresholds.error_rate_red,
                f"error rate {stats.error_rate:.1%}",
                "{:.0%}".format,
            )
        )
    if stats.latency_ms is not None:
        p95 = stats.latency_ms.p95
        checks.append(level(p95, thresholds.p95_amber_ms, thresholds.p95_red_ms, f"p95 {p95:g} ms"))
    checks.extend(alert_checks(path, live))
    return checks or [Check("green", f"{stats.requests} requests")]


def summarize(
    monitored: Monitored | None,
    live: Live | None,
    thresholds: Thresholds,
    loader_group: str,
    stream_group: str,
    monitored_endpoints: Iterable[str] = (),
) -> list[ComponentStatus]:
    """Every stage, then every monitored endpoint and every other endpoint that served requests in the last 5
    minutes, by path (when the live API did not answer: each monitored endpoint and one row for the others,
    all unknown)."""
    rules = stage_rules(thresholds, loader_group, stream_group)
    extra = {
        "gateway": [ingest_check(live, thresholds)],
        "stream": [lag_check(stream_group, monitored, thresholds)],
        "loader": [lag_check(loader_group, monitored, thresholds)],
    }
    statuses = []
    for stage in STAGES:
        result = combine([up_check(stage, monitored), *extra.get(stage, [])])
        statuses.append(
            ComponentStatus("stage", stage, STAGE_TITLES[stage], result.status, result.reason, rules[stage])
        )
    always = set(monitored_endpoints)
    if live is None:
        silent = "live API did not answer"
        statuses.extend(
            ComponentStatus("endpoint", path, path, "unknown", silent, endpoint_rule(thresholds, True))
            for path in sorted(always)
        )
        statuses.append(
            ComponentStatus(
                "endpoint", "*", "API endpoints", "unknown", silent, endpoint_rule(thresholds, False)
            )
        )
        return statuses
    for path in sorted(always | set(live.recent.api.endpoints)):
        served = path in live.recent.api.endpoints
        result = combine(
            endpoint_checks(path, live, thresholds) if served else silent_endpoint_checks(path, live)
        )
        rule = endpoint_rule(thresholds, path in always)
        statuses.append(ComponentStatus("endpoint", path, path, result.status, result.reason, rule))
    return statuses


def read_monitor_metrics(text: str) -> Monitored:
    """`pravis_service_up` per service and `pravis_consumer_lag` summed per group, from the monitor's
    Prometheus text; lag is None when the monitor says it could not read it."""
    up: dict[str, bool] = {}
    lag: dict[str, int] = {}
    lag_failed = False
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "pravis_service_up":
                up[sample.labels["service"]] = sample.value == 1
            elif sample.name == "pravis_consumer_lag":
                group = sample.labels["group"]
                lag[group] = lag.get(group, 0) + int(sample.value)
            elif sample.name == "pravis_monitor_collect_failed" and sample.labels.get("part") == "lag":
                lag_failed = sample.value == 1
    return Monitored(up, None if lag_failed else lag)
