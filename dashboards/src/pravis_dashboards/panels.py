"""Every dashboard panel as parameterized ClickHouse SQL plus how to chart its rows (pure: no I/O).

A panel's SQL uses server-side parameters only (`{project:String}`, `{date_from:Date}`, `{date_to:Date}`,
both dates inclusive), so the text shown and downloaded on the page is exactly what ran and an analyst can
re-run it with `clickhouse-client --param_project=... --param_date_from=... --param_date_to=...`. Daily
trends read the rollup tables (docs/queries.md); metrics that do not add up across days (distinct users,
quantiles over a range) are computed from `events FINAL` for the chosen range. Users are persons
(docs/identity.md): a panel counting distinct users reads each id's person through `person_overrides`, the
join analysts use too.
"""

from __future__ import annotations

import csv
import io
import math
import unicodedata
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pravis_schemas import survey_sql
from pravis_schemas.events import AI_EVENT_TYPES
from pravis_schemas.feature_requests import RANKING_SQL, WEIGHT_DAYS, ranking_parameters
from pravis_schemas.identity import person_id_sql, person_join
from pravis_schemas.opportunities import (
    EVIDENCE_LINKS,
    SCORE_FORMULA,
    SHARE_COLUMNS,
    SHOWN_COLUMNS,
    ranked_sql,
)

PAGES = {"executive": "Executive", "product": "Product", "tech-ops": "Tech ops", "live": "Live"}

ChartKind = Literal["line", "bar", "heatmap", "table"]


@dataclass(frozen=True)
class Chart:
    kind: ChartKind
    x: str
    """Column of the labels (x axis; heat-map rows)."""
    y: tuple[str, ...]
    """Columns drawn as series; with `pivot`, the one value column."""
    pivot: str | None = None
    """Long to wide: each distinct value of this column becomes a series of the `y` column."""
    percent: bool = False
    bytes: bool = False
    """Values are byte counts, shown in KiB/MiB/GiB (IEC) on the axis and in the tooltip."""
    stacked: bool = False
    path_separator: str | None = None
    """A table whose `x` labels are paths joined by this: also drawn as a flow chart (static/flow.js)."""
    links: tuple[tuple[str, str], ...] = ()
    """A table's (text column, URL column) pairs: the text links to the URL, the URL column is not shown."""
    percent_columns: tuple[str, ...] = ()
    """A table's columns shown as percentages."""
    secondary: tuple[str, ...] = ()
    """A line chart's columns drawn as bars on a right-hand axis of their own (the counts behind a score)."""


@dataclass(frozen=True)
class Panel:
    id: str
    page: str
    title: str
    description: str
    sql: str
    chart: Chart
    uses_dates: bool = True
    parameters: dict[str, Any] = field(default_factory=dict)
    """Values of the SQL's placeholders besides the view's (a funnel panel's steps, window, breakdown)."""
    per_survey: bool = False
    """The SQL reads `{survey:String}`, the survey picked on the page (`with_survey`)."""


@dataclass(frozen=True)
class Params:
    project: str
    date_from: date
    date_to: date

    def as_query(self) -> dict[str, Any]:
        return {"project": self.project, "date_from": self.date_from, "date_to": self.date_to}


@dataclass
class ChartData:
    labels: list[Any] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)

    @property
    def points(self) -> int:
        """Data points drawn: non-null values over all series."""
        return sum(1 for s in self.series for v in s["data"] if v is not None)


TEXT_ANSWERS_SHOWN = 20
RANGE = "project_id = {project:String} AND day BETWEEN {date_from:Date} AND {date_to:Date}"
EVENTS_RANGE = (
    "project_id = {project:String} AND timestamp >= {date_from:Date} AND timestamp < {date_to:Date} + 1"
)
ROUTE = "concat(ifNull(method, ''), ' ', ifNull(endpoint, ''))"

AI_BY_MODEL_SQL = f"""SELECT coalesce(nullIf(model_used, ''), '(none)') AS model, count() AS requests,
       countIf(success) / count() AS success_rate,
       quantileExactInclusive(0.5)(request_duration_ms) AS p50_ms,
       quantileExactInclusive(0.95)(request_duration_ms) AS p95_ms
FROM events FINAL
WHERE {EVENTS_RANGE}
  AND event_type IN {AI_EVENT_TYPES!r}
GROUP BY model ORDER BY model"""

REVENUE_TOTAL = "currency = '*' AND ai_session = '*' AND app_version = '*'"


@dataclass(frozen=True)
class Saturation:
    """Where the resources panel warns: a process of the range at or above one of these (the dashboards'
    PRAVIS_DASHBOARDS_SATURATION_* settings; these defaults are theirs)."""

    cpu_percent: float = 90.0
    """Maximum CPU, in % of one core."""
    loop_lag_ms: float = 100.0
    """p95 of the asyncio event-loop lag."""
    open_fds: int = 50_000
    """Maximum open file descriptors."""
    rss_bytes: int = 2 * 2**30
    """Maximum resident memory."""

    def as_parameters(self) -> dict[str, Any]:
        return {f"saturation_{name}": value for name, value in asdict(self).items()}

    def rule(self) -> str:
        return (
            f"Warning when the range's maximum CPU reaches {self.cpu_percent:g}% of a core, the p95 "
            f"event-loop lag {self.loop_lag_ms:g} ms, open descriptors {self.open_fds}, or resident memory "
            f"{self.rss_bytes / 2**20:g} MiB."
        )


def resource_top_panel(saturation: Saturation) -> Panel:
    """The top consumers with their saturation warnings; the thresholds are query parameters, and the
    description states the ones in force."""
    return Panel(
        "resource_top",
        "tech-ops",
        "Top resource consumers and saturation warnings",
        f"Processes of the range by mean CPU. {saturation.rule()}",
        "SELECT concat(assumeNotNull(service), ' @ ', assumeNotNull(host), ' #', toString(pid)) AS process,\n"
        "       count() AS samples, avg(cpu_percent) AS mean_cpu, max(cpu_percent) AS max_cpu,\n"
        "       max(rss_bytes) AS max_rss_bytes, max(open_fds) AS max_open_fds,\n"
        "       max(threads) AS max_threads, quantileExactInclusive(0.95)(loop_lag_ms) AS p95_loop_lag_ms,\n"
        "       max(in_flight) AS max_in_flight,\n"
        "       arrayStringConcat(arrayFilter(w -> w != '', [\n"
        "           if(max_cpu >= {saturation_cpu_percent:Float64}, 'CPU saturated', ''),\n"
        "           if(p95_loop_lag_ms >= {saturation_loop_lag_ms:Float64}, 'event loop lagging', ''),\n"
        "           if(max_open_fds >= {saturation_open_fds:UInt64}, 'file descriptors', ''),\n"
        "           if(max_rss_bytes >= {saturation_rss_bytes:UInt64}, 'memory', '')]),\n"
        "           ', ') AS warning\n"
        f"FROM events FINAL\nWHERE {EVENTS_RANGE}\n  AND event_type = 'resource_sample'\n"
        "GROUP BY process\nORDER BY mean_cpu DESC, process\nLIMIT 20",
        Chart(
            "table",
            "process",
            (
                "samples",
                "mean_cpu",
                "max_cpu",
                "max_rss_bytes",
                "max_open_fds",
                "max_threads",
                "p95_loop_lag_ms",
                "max_in_flight",
                "warning",
            ),
        ),
        parameters=saturation.as_parameters(),
    )


def _per_service_hourly(figure: str) -> str:
    """Hourly sum over a service's processes of each process's hourly mean of `figure` (a column name)."""
    return f"""SELECT hour, service, sum(value) AS {figure}
FROM (
    SELECT toStartOfHour(timestamp) AS hour, assumeNotNull(service) AS service, host, pid,
           avg({figure}) AS value
    FROM events FINAL
    WHERE {EVENTS_RANGE}
      AND event_type = 'resource_sample'
    GROUP BY hour, service, host, pid
)
GROUP BY hour, service
ORDER BY hour, service"""


ERROR_PATTERNS_SQL = f"""SELECT p.fingerprint AS fingerprint, any(p.kind) AS kind,
       any(p.error_type) AS error_type,
       any(p.location) AS location, any(p.message) AS message, sum(p.events) AS events,
       max(p.users) AS peak_daily_users, min(s.first_seen) AS first_seen, max(p.last_at) AS last_seen,
       arrayMap(i -> arraySum(arrayMap(d -> if(d.1 = {{date_from:Date}} + i, d.2, 0),
                                       groupArray((p.day, p.events)))),
                range(toUInt64(dateDiff('day', {{date_from:Date}}, {{date_to:Date}}) + 1))) AS daily,
       arraySum(arraySlice(daily, 1, intDiv(length(daily), 2))) AS earlier,
       arraySum(arraySlice(daily, intDiv(length(daily), 2) + 1)) AS later,
       multiIf(first_seen >= {{date_from:Date}}, 'new', later > earlier * 1.5, 'rising',
               later * 1.5 < earlier, 'falling', 'steady') AS trend
FROM error_patterns_daily AS p
LEFT JOIN (SELECT fingerprint, min(first_at) AS first_seen FROM error_patterns_daily
           WHERE project_id = {{project:String}} GROUP BY fingerprint) AS s ON s.fingerprint = p.fingerprint
WHERE p.{RANGE}
GROUP BY fingerprint
ORDER BY events DESC, fingerprint
LIMIT 50"""
"""Failures grouped by fingerprint over the range: `daily` draws the sparkline; the trend compares the range's
later half with its earlier one; `first_seen` is over all time, so `new` means first seen in the range."""

PANELS: tuple[Panel, ...] = (
    Panel(
        "active_users",
        "executive",
        "Active users: DAU, WAU, MAU",
        "Users active that day, in the 7 and the 30 days ending that day (any event but api_request).",
        f"SELECT day, dau, wau, mau\nFROM daily_active_users\nWHERE {RANGE}\nORDER BY day",
        Chart("line", "day", ("dau", "wau", "mau")),
    ),
    Panel(
        "stickiness",
        "executive",
        "Stickiness (DAU / MAU)",
        "Share of the month's active users who came that day.",
        f"SELECT day, stickiness, new_users\nFROM daily_active_users\nWHERE {RANGE}\nORDER BY day",
        Chart("line", "day", ("stickiness",), percent=True),
    ),
    Panel(
        "retention",
        "executive",
        "Retention cohorts: D1, D7, D30",
        "Users by week of their first active day; share active exactly 1, 7, 30 days later (blank: not yet).",
        "SELECT cohort_week, cohort_size, d1_rate, d7_rate, d30_rate\nFROM retention_cohorts\n"
        "WHERE project_id = {project:String}\n"
        "  AND cohort_week BETWEEN toMonday({date_from:Date}) AND {date_to:Date}\nORDER BY cohort_week",
        Chart("heatmap", "cohort_week", ("d1_rate", "d7_rate", "d30_rate"), percent=True),
    ),
    Panel(
        "feedback_score",
        "executive",
        "Feedback score (average rating, 1-5)",
        "Average rating of the day's feedback events.",
        f"SELECT day, feedback, avg_rating\nFROM feedback_daily\nWHERE {RANGE}\nORDER BY day",
        Chart("line", "day", ("avg_rating",)),
    ),
    Panel(
        "sentiment",
        "executive",
        "Feedback sentiment mix",
        "Feedback comments scored by the stream tier, by sentiment label.",
        f"SELECT day, positive, neutral, negative, avg_sentiment\nFROM feedback_daily\nWHERE {RANGE}\n"
        "ORDER BY day",
        Chart("bar", "day", ("positive", "neutral", "negative"), stacked=True),
    ),
    Panel(
        "ai_accuracy",
        "executive",
        "AI accuracy and success rate",
        "Accuracy = feedback rated 4+ / feedback on the day's AI interactions; success = ok requests.",
        "SELECT day, requests, accuracy, success_rate\nFROM ai_performance_daily\n"
        f"WHERE {RANGE}\n  AND event_type = '*' AND model_used = '*'\nORDER BY day",
        Chart("line", "day", ("accuracy", "success_rate"), percent=True),
    ),
    Panel(
        "feature_usage",
        "product",
        "Feature usage over the range",
        "Distinct users and events per feature; adoption = feature users / active users of the range.",
        f"SELECT e.feature_name AS feature_name, uniqExact({person_id_sql('e', 'po')}) AS users,\n"
        "       count() AS events,\n"
        "       users / (SELECT uniqExact(if(po.person_id = '', a.person_id, po.person_id))\n"
        "                FROM user_activity_daily AS a\n"
        "                LEFT JOIN person_overrides AS po\n"
        "                    ON po.project_id = a.project_id AND po.distinct_id = a.person_id\n"
        f"                WHERE a.{RANGE}) AS adoption\n"
        f"FROM events AS e FINAL\n{person_join('e', 'po')}\nWHERE e.{EVENTS_RANGE}\n"
        "  AND e.event_type = 'feature_use'\nGROUP BY feature_name\nORDER BY users DESC, feature_name",
        Chart("bar", "feature_name", ("users", "events")),
    ),
    Panel(
        "feature_adoption",
        "product",
        "Daily feature adoption",
        "Users of the feature / active users, per day.",
        f"SELECT day, feature_name, adoption\nFROM feature_usage_daily\nWHERE {RANGE}\n"
        "ORDER BY day, feature_name",
        Chart("line", "day", ("adoption",), pivot="feature_name", percent=True),
    ),
    Panel(
        "sessions_per_user",
        "product",
        "Sessions per user",
        "Sessions that started that day / their owners.",
        "SELECT day, sessions, users, sessions_per_user, avg_duration_s\nFROM sessions_daily\n"
        f"WHERE {RANGE}\nORDER BY day",
        Chart("line", "day", ("sessions_per_user",)),
    ),
    Panel(
        "session_duration",
        "product",
        "Session duration distribution",
        "Sessions of the range by duration (last event - first event).",
        "SELECT bucket.1 AS duration, bucket.2 AS sessions\nFROM (\n"
        "    SELECT [('< 10 s', sum(duration_under_10s)), ('10 s - 1 min', sum(duration_10s_1m)),\n"
        "            ('1 - 5 min', sum(duration_1m_5m)), ('5 - 15 min', sum(duration_5m_15m)),\n"
        "            ('15 - 30 min', sum(duration_15m_30m)), ('30 min - 1 h', sum(duration_30m_1h)),\n"
        "            ('1 h +', sum(duration_1h_plus))] AS buckets\n"
        f"    FROM sessions_daily\n    WHERE {RANGE}\n) ARRAY JOIN buckets AS bucket",
        Chart("bar", "duration", ("sessions",)),
    ),
    Panel(
        "voice",
        "product",
        "Voice: success, repeated commands, corrected transcriptions",
        "Rates per day from voice_metrics_daily (repeat window: 30 s in one session).",
        "SELECT day, voice_requests, success_rate, repeated_command_rate, correction_rate\n"
        f"FROM voice_metrics_daily\nWHERE {RANGE}\nORDER BY day",
        Chart("line", "day", ("success_rate", "repeated_command_rate", "correction_rate"), percent=True),
    ),
    Panel(
        "experiments",
        "product",
        "Experiment results (latest computation, all time)",
        "Conversion rate per variant and goal; lift vs control with its p-value in the CSV.",
        "SELECT concat(experiment_key, ' / ', variant, if(goal = '', '', concat(' / ', goal))) AS arm,\n"
        "       experiment_key, variant, goal, users, conversion_rate, lift, lift_ci_low, lift_ci_high,\n"
        "       p_value, srm_flag\nFROM experiment_results FINAL\nWHERE project_id = {project:String}\n"
        "  AND (experiment_key, computed_at) IN (\n"
        "      SELECT experiment_key, max(computed_at) FROM experiment_results\n"
        "      WHERE project_id = {project:String} GROUP BY experiment_key)\n"
        "ORDER BY experiment_key, goal, variation_id",
        Chart("bar", "arm", ("conversion_rate",), percent=True),
        uses_dates=False,
    ),
    Panel(
        "api_latency",
        "tech-ops",
        "API latency, all endpoints (ms)",
        "Exact p50 / p95 / p99 of api_request duration_ms per day.",
        "SELECT day, requests, p50_ms, p95_ms, p99_ms\nFROM api_performance_daily\n"
        f"WHERE {RANGE}\n  AND endpoint = '*' AND method = '*'\nORDER BY day",
        Chart("line", "day", ("p50_ms", "p95_ms", "p99_ms")),
    ),
    Panel(
        "api_endpoints",
        "tech-ops",
        "API latency per endpoint over the range (ms)",
        "Exact quantiles over every request of the range; error_rate = 5xx / requests.",
        f"SELECT {ROUTE} AS route, count() AS requests,\n"
        "       quantileExactInclusive(0.5)(duration_ms) AS p50_ms,\n"
        "       quantileExactInclusive(0.95)(duration_ms) AS p95_ms,\n"
        "       quantileExactInclusive(0.99)(duration_ms) AS p99_ms,\n"
        "       countIf(status >= 500) / count() AS error_rate\n"
        f"FROM events FINAL\nWHERE {EVENTS_RANGE}\n  AND event_type = 'api_request'\n"
        "GROUP BY route\nORDER BY route",
        Chart("bar", "route", ("p50_ms", "p95_ms", "p99_ms")),
    ),
    Panel(
        "api_errors",
        "tech-ops",
        "Error rate (5xx) per endpoint",
        "Server errors / requests per endpoint and day.",
        f"SELECT day, concat(method, ' ', endpoint) AS route, requests, server_errors, error_rate\n"
        f"FROM api_performance_daily\nWHERE {RANGE}\n  AND endpoint != '*'\nORDER BY day, route",
        Chart("line", "day", ("error_rate",), pivot="route", percent=True),
    ),
    Panel(
        "cache_hits",
        "tech-ops",
        "Cache hit ratio",
        "Cache hits / api_requests that reported cache_hit, all endpoints.",
        "SELECT day, cache_reported, cache_hits, cache_hit_ratio\nFROM api_performance_daily\n"
        f"WHERE {RANGE}\n  AND endpoint = '*' AND method = '*'\nORDER BY day",
        Chart("line", "day", ("cache_hit_ratio",), percent=True),
    ),
    Panel(
        "ai_success_by_model",
        "tech-ops",
        "AI success rate per model",
        "Successful AI requests (voice, transcription, TTS, conversation) / requests, over the range.",
        AI_BY_MODEL_SQL,
        Chart("bar", "model", ("success_rate",), percent=True),
    ),
    Panel(
        "ai_latency_by_model",
        "tech-ops",
        "AI latency per model (ms)",
        "Exact p50 / p95 of request_duration_ms over the range.",
        AI_BY_MODEL_SQL,
        Chart("bar", "model", ("p50_ms", "p95_ms")),
    ),
    Panel(
        "alert_history",
        "tech-ops",
        "Alerts fired per day",
        "Anomaly alerts of the stream tier by the day they started, per severity.",
        "SELECT toDate(started_at) AS day, severity, uniqExact(alert_id) AS alerts\nFROM alerts FINAL\n"
        "WHERE project_id = {project:String} AND status = 'firing'\n"
        "  AND started_at >= {date_from:Date} AND started_at < {date_to:Date} + 1\n"
        "GROUP BY day, severity\nORDER BY day, severity",
        Chart("bar", "day", ("alerts",), pivot="severity", stacked=True),
    ),
    Panel(
        "alert_list",
        "tech-ops",
        "Alert history",
        "Latest alerts of the range; resolved is empty while an alert still fires.",
        "SELECT alert_id, any(metric) AS metric, any(severity) AS severity,\n"
        "       anyIf(observed, status = 'firing') AS observed,\n"
        "       anyIf(expected, status = 'firing') AS expected,\n"
        "       min(started_at) AS fired_at, maxIf(resolved_at, status = 'resolved') AS resolved\n"
        "FROM alerts FINAL\nWHERE project_id = {project:String}\n"
        "  AND started_at >= {date_from:Date} AND started_at < {date_to:Date} + 1\n"
        "GROUP BY alert_id\nORDER BY fired_at DESC, alert_id\nLIMIT 50",
        Chart("table", "alert_id", ("metric", "severity", "observed", "expected", "fired_at", "resolved")),
    ),
    # Issue 24: revenue (executive) and error patterns (tech ops).
    Panel(
        "revenue",
        "executive",
        "Revenue in the reporting currency",
        "Orders once per order_id; net = revenue - refunds of the day; unconverted: amounts without an "
        "exchange rate (pravis fx load), left out.",
        "SELECT day, reporting_currency, orders, buyers, revenue, refunds, net_revenue,\n"
        "       average_order_value, unconverted\n"
        f"FROM revenue_daily\nWHERE {RANGE}\n  AND {REVENUE_TOTAL}\nORDER BY day",
        Chart("line", "day", ("revenue", "net_revenue", "average_order_value")),
    ),
    Panel(
        "revenue_ai",
        "executive",
        "Does the assistant sell? Sessions with and without AI",
        "Orders whose session used the AI assistant or not: conversion = buyers / active users (who used AI "
        "that day, or not) and revenue per active user, summed over the range's days.",
        "SELECT ai_session, sum(orders) AS orders, sum(revenue) AS total_revenue,\n"
        "       sum(buyers) / sum(active_users) AS conversion,\n"
        "       total_revenue / sum(active_users) AS revenue_per_active_user\nFROM revenue_daily\n"
        f"WHERE {RANGE}\n  AND currency = '*' AND ai_session != '*' AND app_version = '*'\n"
        "GROUP BY ai_session\nORDER BY ai_session",
        Chart("bar", "ai_session", ("conversion",), percent=True),
    ),
    Panel(
        "error_patterns",
        "tech-ops",
        "Error patterns",
        "Errors, 5xx API requests and failed AI requests grouped by fingerprint (type + message without "
        "numbers, ids, quoted values + endpoint/model); trend: later vs earlier half of the range.",
        ERROR_PATTERNS_SQL,
        Chart(
            "table",
            "fingerprint",
            (
                "events",
                "kind",
                "error_type",
                "location",
                "message",
                "peak_daily_users",
                "first_seen",
                "last_seen",
                "trend",
                "daily",
            ),
        ),
    ),
    # Issue 24: improvement opportunities (product); the evidence of a row is opportunity_panels.
    Panel(
        "opportunities",
        "product",
        "Improvement opportunities",
        f"Features and voice intents of the range, worst first. {SCORE_FORMULA}. A row's comment, failure "
        "and funnel step link to their evidence.",
        ranked_sql(),
        Chart(
            "table",
            "opportunity",
            (*SHOWN_COLUMNS, *(url for _, url in EVIDENCE_LINKS)),
            links=EVIDENCE_LINKS,
            percent_columns=SHARE_COLUMNS,
        ),
    ),
    # Issue 23: surveys (product); a per_survey panel shows the survey picked on the page.
    Panel(
        "survey_nps",
        "product",
        "Survey NPS trend",
        "NPS = 100 x (promoters 9-10 - detractors 0-6) / answers to the survey's NPS questions, per day (per "
        f"week over ranges longer than {survey_sql.DAILY_UP_TO_DAYS} days); bars: answers.",
        survey_sql.NPS_TREND_SQL,
        Chart("line", "period", ("nps",), secondary=("responses",)),
        per_survey=True,
    ),
    Panel(
        "survey_response_rate",
        "product",
        "Survey response rate",
        "Answered / shown per day (per week over long ranges); bars: times shown.",
        survey_sql.RESPONSE_RATE_SQL,
        Chart("line", "period", ("response_rate",), percent=True, secondary=("shown_n",)),
        per_survey=True,
    ),
    Panel(
        "survey_ratings",
        "product",
        "Survey rating distribution",
        "Answers per value of each rating and NPS question of the range (share of the question's answers in "
        "the CSV).",
        survey_sql.VALUE_DISTRIBUTION_SQL,
        Chart("bar", "value", ("answers",), pivot="question"),
        per_survey=True,
    ),
    Panel(
        "survey_text_answers",
        "product",
        "Recent open-text answers",
        f"The newest {TEXT_ANSWERS_SHOWN} open-text answers of the range with the VADER sentiment the stream "
        "tier gave them (blank until scored).",
        survey_sql.RECENT_TEXT_SQL,
        Chart("table", "timestamp", ("text", "sentiment_label", "sentiment_score", "question", "version")),
        parameters={"limit": TEXT_ANSWERS_SHOWN},
        per_survey=True,
    ),
    Panel(
        "feature_requests",
        "product",
        "Feature requests (all time)",
        "The board GET /api/v1/feature-requests answers: requests by normalised title, votes = persons; "
        f"weighted: each voter counts their active days of the last {WEIGHT_DAYS} (at least 1).",
        RANKING_SQL,
        Chart("table", "title", ("votes", "weighted_votes", "status")),
        uses_dates=False,
        parameters={k: v for k, v in ranking_parameters("").items() if k != "project"},
    ),
    Panel(
        "resource_cpu",
        "tech-ops",
        "CPU per service (% of one core)",
        "resource_sample events (SDK middleware, pipeline services): per hour, each process's mean, summed "
        "over the service's processes.",
        _per_service_hourly("cpu_percent"),
        Chart("line", "hour", ("cpu_percent",), pivot="service"),
    ),
    Panel(
        "resource_memory",
        "tech-ops",
        "Memory per service (RSS)",
        "Resident memory: per hour, each process's mean, summed over the service's processes.",
        _per_service_hourly("rss_bytes"),
        Chart("line", "hour", ("rss_bytes",), pivot="service", bytes=True),
    ),
    resource_top_panel(Saturation()),
)
BY_ID = {panel.id: panel for panel in PANELS}


def configured(saturation: Saturation) -> tuple[Panel, ...]:
    """PANELS with the settings in force: the saturation thresholds of the resources panel."""
    return tuple(resource_top_panel(saturation) if panel.id == "resource_top" else panel for panel in PANELS)


PROJECTS_SQL = "SELECT DISTINCT project_id FROM daily_active_users ORDER BY project_id"
LATEST_DAY_SQL = "SELECT max(day) FROM daily_active_users WHERE project_id = {project:String}"


SURVEYS_SQL = (
    "SELECT survey_key FROM surveys FINAL WHERE project_id = {project:String} "
    "GROUP BY survey_key ORDER BY survey_key"
)
"""The surveys the page's survey picker offers (every version counts, so a stopped survey still shows)."""


def page_panels(page: str, among: tuple[Panel, ...] = PANELS) -> list[Panel]:
    return [panel for panel in among if panel.page == page]


def with_survey(panel: Panel, survey: str) -> Panel:
    """A per_survey panel reading `survey` (its value is a parameter, shown and downloaded as the others)."""
    return replace(panel, parameters={**panel.parameters, "survey": survey})


def default_range(latest: date | None, today: date, days: int) -> tuple[date, date]:
    """`days` days ending at the latest rolled-up day (today when nothing is rolled up yet)."""
    last = latest if latest and latest > date(1970, 1, 1) else today
    return last - timedelta(days=days - 1), last


def standalone_sql(panel: Panel, params: Params) -> str:
    """The panel's SQL as a file that runs as it is (`clickhouse-client --queries-file`): the view's values
    are set as query parameters by `SET param_<name> = '...'` statements, and the panel's SQL keeps its
    `{name:Type}` placeholders. A value never lands in a comment or in the SQL text outside a quoted literal,
    so no project name can end a comment or a statement."""
    names = ["project", "date_from", "date_to"] if panel.uses_dates else ["project"]
    values = {**params.as_query(), **panel.parameters}
    settings = "".join(
        f"SET param_{name} = {parameter_literal(parameter_text(values[name]))};\n"
        for name in [*names, *panel.parameters]
    )
    return (
        f"-- Pravis dashboards: {panel.title}\n-- {panel.description}\n"
        f"-- Run: clickhouse-client --queries-file {panel.id}.sql\n"
        f"{settings}{panel.sql};\n"
    )


_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\0": "\\0",
}
_INVISIBLE = {"Cc", "Cf", "Cs", "Zl", "Zp"}
"""Controls, format characters (bidi overrides, zero-width), surrogates and Unicode line/paragraph separators:
escaped too, so the file an analyst reads shows what it runs."""


def clickhouse_escape(value: str) -> str:
    """`value` with ClickHouse's backslash escapes (its string literals and its "escaped" text format, e.g.
    TSV, read the same ones): backslash, quote, and every control or invisible character as `\\xHH` bytes of
    its UTF-8, so the result is one line of visible text. Other characters stay as they are (UTF-8)."""
    return "".join(
        _ESCAPES.get(c)
        or (
            "".join(f"\\x{byte:02X}" for byte in c.encode("utf-8", "surrogatepass"))
            if unicodedata.category(c) in _INVISIBLE
            else c
        )
        for c in value
    )


def clickhouse_string(value: str) -> str:
    """`value` as a ClickHouse string literal."""
    return f"'{clickhouse_escape(value)}'"


def parameter_text(value: Any) -> str:
    """A parameter's value in ClickHouse's text format: arrays as `['a','b']`, booleans as true/false."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(clickhouse_string(str(v)) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parameter_literal(value: str) -> str:
    """The literal for `SET param_x = ...` that makes the query parameter `x` equal `value`. ClickHouse reads
    a parameter's value in its escaped text format after unquoting the literal (a bare backslash or newline
    in it fails with BAD_QUERY_PARAMETER), hence two escapes."""
    return clickhouse_string(clickhouse_escape(value))


def jsonable(value: Any) -> Any:
    """A ClickHouse value as JSON: dates as ISO strings, NaN/inf (0/0 in SQL) as null."""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def chart_data(chart: Chart, columns: list[str], rows: list[tuple]) -> ChartData:
    """Rows of a panel's query as labels and series, pivoted when the chart says so."""
    index = {name: i for i, name in enumerate(columns)}
    if chart.pivot is None:
        return ChartData(
            labels=[jsonable(row[index[chart.x]]) for row in rows],
            series=[
                {"name": c, "data": [jsonable(row[index[c]]) for row in rows]}
                for c in (*chart.y, *chart.secondary)
            ],
        )
    labels: list[Any] = []
    names: list[str] = []
    cells: dict[tuple[Any, str], Any] = {}
    for row in rows:
        label, name = jsonable(row[index[chart.x]]), str(row[index[chart.pivot]])
        if label not in labels:
            labels.append(label)
        if name not in names:
            names.append(name)
        cells[(label, name)] = jsonable(row[index[chart.y[0]]])
    return ChartData(
        labels=labels,
        series=[{"name": n, "data": [cells.get((label, n)) for label in labels]} for n in sorted(names)],
    )


def to_csv(columns: list[str], rows: list[tuple]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else v if isinstance(v, Decimal) else jsonable(v) for v in row])
    return out.getvalue()
