# ruff: noqa: E501 - SQL text stays on the lines it reads best on
"""Every rollup, defined once: the table it fills, its columns, its partition grain and its SQL builder, a pure
function from a date range and options to a parameterized SELECT (no I/O).

Each rollup is a builder function decorated with `@_registered(grain, columns)`: the decorator turns it into a
`Rollup` named after the function (the table's name) and adds it to `BY_NAME`, in definition order, which is
the order they run (`ROLLUPS`). Rows are partitioned by one date column (`day`, or `cohort_week` for
retention). `Rollup.select(first, last, options, source)` returns the SELECT computing every partition in [first,
last]; `pravis_rollups.jobs` runs it into a staging copy and swaps the partitions in. Every value reaches
ClickHouse as a query parameter (`{name:Type}`); the only text composed here is fixed SQL from this module.

Dedup: raw events are read from `source`, the deduplicated rows of `events FINAL` with each row's person
(`pravis_rollups.scan`), and `feedback_scored FINAL`, so a redelivered event_id counts once.

Persons: every count of users counts `person_id` (docs/identity.md), never a raw id: a visitor who browses
anonymously and then logs in is one user. `user_activity_daily` stores the person each active id had when its
day was computed; the rollups reading it map that through `person_overrides` again, so a merge that happened
since (a login linking an anonymous id, an alias) already counts for the older days inside a MAU window or a
retention cohort without recomputing them. Definitions of the voice and AI metrics follow schemas/README.md;
docs/queries.md explains every column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from pravis_schemas.error_patterns import failures_sql
from pravis_schemas.events import AI_EVENT_TYPES, ORDER_EVENT_TYPE, REFUND_EVENT_TYPE
from pravis_schemas.funnel_sql import funnel_sql
from pravis_schemas.funnels import StoredFunnel
from pravis_schemas.identity import person_id_sql, person_join
from pravis_schemas.opportunities import DAILY_COLUMNS, USERS_COLUMNS, daily_sql, users_daily_sql
from pravis_schemas.surveys import NPS_DETRACTOR_MAX, NPS_PROMOTER_MIN
from pravis_schemas.voice_sql import REPEAT_WINDOW, REPEAT_WINDOW_S, repeated_command_sql

INACTIVE_EVENT_TYPES = ("api_request", "identify", "alias", "resource_sample")
"""Server-side telemetry (it identifies API callers or processes, not a person using the product) and identity bookkeeping
(an alias may be sent by a server long after the person's visit): they do not make a user active nor belong to
a session."""

MAU_WINDOW_DAYS = 30
WAU_WINDOW_DAYS = 7
RETENTION_DAYS = (1, 7, 30)
"""Day-N retention: share of a cohort active exactly N days after their first active day."""

SESSION_LOOKAROUND_DAYS = 1
"""A session belongs to the day of its first event; events up to this many days around the range are read so a
session that crosses midnight is measured whole (sessions longer than a day are cut)."""

SESSION_BUCKETS: tuple[tuple[str, float, float | None], ...] = (
    ("duration_under_10s", 0, 10),
    ("duration_10s_1m", 10, 60),
    ("duration_1m_5m", 60, 300),
    ("duration_5m_15m", 300, 900),
    ("duration_15m_30m", 900, 1800),
    ("duration_30m_1h", 1800, 3600),
    ("duration_1h_plus", 3600, None),
)
"""Session duration distribution: [low, high) seconds."""

RATINGS = range(1, 6)
"""The feedback ratings feedback_daily counts one column each of."""

Grain = Literal["day", "week"]


@dataclass(frozen=True)
class RollupOptions:
    as_of: date | None = None
    """Last complete day retention may look at (D-N eligibility); the jobs default it to yesterday (UTC)."""
    repeat_window_s: int = REPEAT_WINDOW_S
    """Repeated command: same intent as the session's previous voice_request at most this many seconds
    earlier."""
    feedback_lookback_days: int = 1
    """Feedback is joined to AI requests from this many days before the range on (clients' clocks differ)."""
    inactive_types: tuple[str, ...] = INACTIVE_EVENT_TYPES
    ai_types: tuple[str, ...] = AI_EVENT_TYPES
    reporting_currency: str = "EUR"
    """revenue_daily converts every currency into this one through `fx_rates`."""
    order_lookback_days: int = 30
    """An order_id (or refund) seen this many days before a day counts on that earlier day only; one repeated
    later than this counts again (the scan reads this many days of order events, not of every event)."""
    funnels: tuple[StoredFunnel, ...] | None = None
    """The saved funnels funnel_daily computes; None: the jobs load every funnel's newest version."""


@dataclass(frozen=True)
class Query:
    sql: str
    parameters: dict[str, Any] = field(default_factory=dict)


Builder = Callable[[date, date, RollupOptions, str], Query]
"""(first partition, last partition, options, source of raw events) -> the SELECT of those partitions' rows."""


@dataclass(frozen=True)
class Rollup:
    table: str
    grain: Grain
    columns: tuple[str, ...]
    """The table's columns, in the order the builder's SELECT returns them."""
    builder: Builder
    needs_activity: bool = False
    """Reads user_activity_daily, which must be computed first for the dates it reads."""
    reads_events: bool = True
    """Reads raw events (so a shared scan can stand in for `events FINAL`)."""

    @property
    def partition_column(self) -> str:
        return "cohort_week" if self.grain == "week" else "day"

    @property
    def partition_step_days(self) -> int:
        """Days between two consecutive partitions."""
        return 7 if self.grain == "week" else 1

    def partitions(self, first: date, last: date) -> list[date]:
        """The partitions a run over the event dates [first, last] rewrites. A retention cohort changes while
        its members' day-30 activity can still change, so the weeks of the 30 days before `first` are
        included."""
        if self.grain == "day":
            return day_range(first, last)
        week = monday(first - timedelta(days=max(RETENTION_DAYS)))
        weeks = []
        while week <= monday(last):
            weeks.append(week)
            week += timedelta(days=7)
        return weeks

    def select(self, first: date, last: date, options: RollupOptions, source: str) -> Query:
        """SELECT of the rows of partitions [first, last] (days, or cohort Mondays), columns in
        `self.columns`. `source` is where raw events are read: a table filled by
        `pravis_rollups.scan.scan_select`, or that select as a subquery, for a range containing [first, last]
        (fixed SQL text from the jobs, never user input; unused by the rollups that do not read events)."""
        return self.builder(first, last, options, source)


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def day_range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _events_between(lo_days: int = 0, hi_days: int = 1) -> str:
    """Timestamp bounds [date_from - lo_days, date_to + hi_days) in UTC; the offsets are constants of this
    module."""
    return (
        f"timestamp >= toDateTime64({{date_from:Date}} - {int(lo_days)}, 3, 'UTC') "
        f"AND timestamp < toDateTime64({{date_to:Date}} + {int(hi_days)}, 3, 'UTC')"
    )


def date_parameters(first: date, last: date) -> dict[str, Any]:
    if last < first:
        raise ValueError(f"empty range {first}..{last}")
    return {"date_from": first, "date_to": last}


def _active_persons(where: str) -> str:
    """user_activity_daily rows (project_id, day, person_id) matching `where` (fixed text of this module, on
    alias `a`), each under its person now: the ids it stored may have been linked or merged since. The stored
    id goes in as `distinct_id`, the column the person join matches."""
    return f"""SELECT a.project_id AS project_id, a.day AS day, {person_id_sql("a", "po")} AS person_id
        FROM (SELECT project_id, day, person_id AS distinct_id FROM user_activity_daily AS a WHERE {where}) AS a
        {person_join("a", "po")}"""


ACTIVE_USERS_PER_DAY = """
    SELECT project_id, day, count() AS active_users
    FROM user_activity_daily
    WHERE day >= {date_from:Date} AND day <= {date_to:Date}
    GROUP BY project_id, day"""
"""Active persons per day of the range (the denominator of adoption and conversion)."""

BY_NAME: dict[str, Rollup] = {}
"""Every rollup by table name, in definition order (filled by `_registered`)."""


def _registered(
    grain: Grain, columns: Iterable[str], *, needs_activity: bool = False, reads_events: bool = True
) -> Callable[[Builder], Rollup]:
    """Make the decorated builder a Rollup filling the table it is named after, and register it."""

    def register(builder: Builder) -> Rollup:
        rollup = Rollup(builder.__name__, grain, tuple(columns), builder, needs_activity, reads_events)
        BY_NAME[rollup.table] = rollup
        return rollup

    return register


@_registered("day", ("project_id", "day", "person_id", "events", "first_at", "last_at"))
def user_activity_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    sql = f"""
SELECT project_id, toDate(timestamp) AS day, person_id, count() AS events,
       min(timestamp) AS first_at, max(timestamp) AS last_at
FROM {source}
WHERE {_events_between()}
  AND event_type NOT IN {{inactive_types:Array(String)}} AND distinct_id != ''
GROUP BY project_id, day, person_id"""
    return Query(sql, {**date_parameters(first, last), "inactive_types": list(options.inactive_types)})


MAX_ACTIVE_USERS_DAYS = 64 - (MAU_WINDOW_DAYS - 1)
"""Most days one daily_active_users query computes: a user's activity over them and the MAU window before
them must fit a 64-bit mask."""


@_registered(
    "day",
    ("project_id", "day", "dau", "wau", "mau", "new_users", "stickiness"),
    needs_activity=True,
    reads_events=False,
)
def daily_active_users(first: date, last: date, options: RollupOptions, source: str) -> Query:
    # One row per person with a bit per active day (bit 0 = the first day of the first MAU window) and their
    # first active day ever, expanded over the range's days: DAU/WAU/MAU/new users become bit tests and plain
    # counts. Measured at 10M events: 5x faster than expanding every active day into the 30 windows holding it
    # and counting distinct ids per window. One pass over the activity gives both, so the mapping of stored ids
    # to persons runs once (measured: a second pass and a join cost as much as the mapping).
    if (last - first).days >= MAX_ACTIVE_USERS_DAYS:
        raise ValueError(f"daily_active_users computes at most {MAX_ACTIVE_USERS_DAYS} days at once")
    lead = MAU_WINDOW_DAYS - 1
    week_bits, month_bits = (1 << WAU_WINDOW_DAYS) - 1, (1 << MAU_WINDOW_DAYS) - 1
    in_month = f"bitAnd(m.days, bitShiftLeft(toUInt64({month_bits}), i)) != 0"
    sql = f"""
SELECT project_id, window_day AS day, dau, wau, mau, new_users, if(mau = 0, 0, dau / mau) AS stickiness
FROM (
    SELECT m.project_id AS project_id, {{date_from:Date}} + i AS window_day,
           countIf(bitTest(m.days, i + {lead})) AS dau,
           countIf(bitAnd(m.days, bitShiftLeft(toUInt64({week_bits}), i + {lead - WAU_WINDOW_DAYS + 1})) != 0) AS wau,
           count() AS mau,
           countIf(bitTest(m.days, i + {lead}) AND m.first_day = window_day) AS new_users
    FROM (
        SELECT project_id, person_id, min(day) AS first_day,
               groupBitOrIf(bitShiftLeft(toUInt64(1), greatest(dateDiff('day', {{date_from:Date}} - {lead}, day), 0)),
                            day >= {{date_from:Date}} - {lead}) AS days
        FROM ({_active_persons("a.day <= {date_to:Date}")})
        GROUP BY project_id, person_id
        HAVING days != 0
    ) AS m
    ARRAY JOIN range(toUInt64(dateDiff('day', {{date_from:Date}}, {{date_to:Date}}) + 1)) AS i
    WHERE {in_month}
    GROUP BY project_id, window_day
)"""
    return Query(sql, date_parameters(first, last))


@_registered(
    "week",
    (
        "project_id",
        "cohort_week",
        "cohort_size",
        *(f"d{n}_{c}" for n in RETENTION_DAYS for c in ("eligible", "retained", "rate")),
        "as_of",
    ),
    needs_activity=True,
    reads_events=False,
)
def retention_cohorts(first_week: date, last_week: date, options: RollupOptions, source: str) -> Query:
    if options.as_of is None:
        raise ValueError("retention needs options.as_of (the last complete day)")
    # One row per person (their first day and active days): one pass over the activity, mapped to persons
    # once, and counts instead of distinct counts over a join.
    counts = ",\n".join(
        f"countIf(first_day + {n} <= {{as_of:Date}}) AS d{n}_eligible, "
        f"countIf(has(days, first_day + {n})) AS d{n}_retained"
        for n in RETENTION_DAYS
    )
    rates = ", ".join(
        f"d{n}_eligible, d{n}_retained, if(d{n}_eligible = 0, NULL, d{n}_retained / d{n}_eligible) AS d{n}_rate"
        for n in RETENTION_DAYS
    )
    sql = f"""
SELECT project_id, cohort_week, cohort_size, {rates}, {{as_of:Date}} AS as_of
FROM (
    SELECT project_id, toMonday(first_day) AS cohort_week, count() AS cohort_size,
           {counts}
    FROM (
        SELECT project_id, person_id, min(day) AS first_day, groupUniqArray(day) AS days
        FROM ({_active_persons("a.day <= {as_of:Date}")})
        GROUP BY project_id, person_id
        HAVING first_day >= {{date_from:Date}} AND first_day < {{date_to:Date}} + 7
    )
    GROUP BY project_id, cohort_week
)"""
    if first_week.weekday() or last_week.weekday():
        raise ValueError("retention partitions are Mondays")
    return Query(sql, {**date_parameters(first_week, last_week), "as_of": options.as_of})


@_registered(
    "day",
    (
        "project_id",
        "day",
        "sessions",
        "users",
        "sessions_per_user",
        "single_event_sessions",
        "avg_duration_s",
        "p50_duration_s",
        "p90_duration_s",
        *(name for name, _, _ in SESSION_BUCKETS),
    ),
)
def sessions_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    buckets = ",\n       ".join(
        f"countIf(duration_s >= {low}{f' AND duration_s < {high}' if high is not None else ''}) AS {name}"
        for name, low, high in SESSION_BUCKETS
    )
    # Sessions are grouped on assumeNotNull(session_id) (NULLs are filtered out): a plain String key hashes
    # faster than a Nullable one (measured at 10M events: -13%).
    sql = f"""
SELECT project_id, day, sessions, users, sessions / users AS sessions_per_user, single_event_sessions,
       avg_duration_s, q[1] AS p50_duration_s, q[2] AS p90_duration_s, {", ".join(b[0] for b in SESSION_BUCKETS)}
FROM (
    SELECT project_id, toDate(started_at) AS day, count() AS sessions, uniqExact(owner) AS users,
           countIf(events = 1) AS single_event_sessions, avg(duration_s) AS avg_duration_s,
           quantilesExactInclusive(0.5, 0.9)(duration_s) AS q,
           {buckets}
    FROM (
        SELECT project_id, assumeNotNull(session_id) AS session, argMin(person_id, timestamp) AS owner,
               min(timestamp) AS started_at,
               count() AS events, dateDiff('millisecond', min(timestamp), max(timestamp)) / 1000 AS duration_s
        FROM {source}
        WHERE {_events_between(SESSION_LOOKAROUND_DAYS, 1 + SESSION_LOOKAROUND_DAYS)}
          AND session_id IS NOT NULL AND event_type NOT IN {{inactive_types:Array(String)}} AND distinct_id != ''
        GROUP BY project_id, session
    )
    WHERE started_at >= toDateTime64({{date_from:Date}}, 3, 'UTC')
      AND started_at < toDateTime64({{date_to:Date}} + 1, 3, 'UTC')
    GROUP BY project_id, day
)"""
    return Query(sql, {**date_parameters(first, last), "inactive_types": list(options.inactive_types)})


@_registered(
    "day",
    ("project_id", "day", "feature_name", "users", "events", "active_users", "adoption"),
    needs_activity=True,
)
def feature_usage_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    sql = f"""
SELECT f.project_id AS project_id, f.day AS day, f.feature AS feature_name, f.users AS users, f.events AS events,
       a.active_users AS active_users, if(a.active_users = 0, NULL, f.users / a.active_users) AS adoption
FROM (
    SELECT project_id, toDate(timestamp) AS day, assumeNotNull(feature_name) AS feature,
           uniqExact(person_id) AS users, count() AS events
    FROM {source}
    WHERE event_type = 'feature_use' AND {_events_between()} AND feature_name IS NOT NULL AND distinct_id != ''
    GROUP BY project_id, day, feature
) AS f
LEFT JOIN ({ACTIVE_USERS_PER_DAY}) AS a ON f.project_id = a.project_id AND f.day = a.day"""
    return Query(sql, date_parameters(first, last))


@_registered(
    "day",
    (
        "project_id",
        "day",
        "event_type",
        "model_used",
        "requests",
        "users",
        "successes",
        "success_rate",
        "p50_ms",
        "p95_ms",
        "feedback",
        "positive_feedback",
        "accuracy",
        "conversations",
        "completion_reported",
        "completed",
        "completion_rate",
        "follow_up_reported",
        "follow_ups",
        "follow_up_rate",
    ),
)
def ai_performance_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    # Feedback is counted once per (group, interaction): groupUniqArray of (interaction_id, count, positive)
    # dedups the interactions a group's requests share, so every GROUPING SETS level stays exact, not a sum of
    # levels. ANY JOIN: the feedback side has one row per interaction, and ANY skips looking for more.
    sql = f"""
SELECT project_id, day, kind_key AS event_type, model_key AS model_used, requests, users, successes,
       successes / requests AS success_rate, q[1] AS p50_ms, q[2] AS p95_ms,
       feedback, positive_feedback, if(feedback = 0, NULL, positive_feedback / feedback) AS accuracy,
       conversations, completion_reported, completed,
       if(completion_reported = 0, NULL, completed / completion_reported) AS completion_rate,
       follow_up_reported, follow_ups, if(follow_up_reported = 0, NULL, follow_ups / follow_up_reported) AS follow_up_rate
FROM (
    SELECT project_id, day, if(grouping(kind) = 1, '*', kind) AS kind_key,
           if(grouping(model) = 1, '*', model) AS model_key,
           count() AS requests, uniqExactIf(person, person != '') AS users, countIf(ok) AS successes,
           quantilesExactInclusive(0.5, 0.95)(duration_ms) AS q,
           groupUniqArrayIf((interaction, fb_n, fb_positive), fb_n > 0) AS rated,
           arraySum(x -> x.2, rated) AS feedback, arraySum(x -> x.3, rated) AS positive_feedback,
           countIf(kind = 'conversation') AS conversations,
           countIf(kind = 'conversation' AND completed_flag IS NOT NULL) AS completion_reported,
           countIf(kind = 'conversation' AND completed_flag) AS completed,
           countIf(kind = 'conversation' AND follow_up_flag IS NOT NULL) AS follow_up_reported,
           countIf(kind = 'conversation' AND follow_up_flag) AS follow_ups
    FROM (
        SELECT r.project_id AS project_id, toDate(r.timestamp) AS day, r.event_type AS kind,
               coalesce(r.model_used, '') AS model, r.person_id AS person, r.interaction AS interaction, r.success AS ok,
               r.request_duration_ms AS duration_ms, r.completed AS completed_flag, r.follow_up AS follow_up_flag,
               fb.n AS fb_n, fb.positive AS fb_positive
        FROM (
            SELECT project_id, timestamp, event_type, model_used, person_id, assumeNotNull(interaction_id) AS interaction,
                   success, request_duration_ms, completed, follow_up
            FROM {source}
            WHERE event_type IN {{ai_types:Array(String)}} AND {_events_between()} AND interaction_id IS NOT NULL
        ) AS r
        LEFT ANY JOIN (
            SELECT project_id, assumeNotNull(interaction_id) AS interaction, count() AS n,
                   countIf(rating >= 4) AS positive
            FROM {source}
            WHERE event_type = 'feedback' AND interaction_id IS NOT NULL
              AND timestamp >= toDateTime64({{date_from:Date}} - {{feedback_lookback_days:UInt16}}, 3, 'UTC')
            GROUP BY project_id, interaction
        ) AS fb ON r.project_id = fb.project_id AND r.interaction = fb.interaction
    )
    GROUP BY GROUPING SETS ((project_id, day, kind, model), (project_id, day, kind), (project_id, day))
)"""
    return Query(
        sql,
        {
            **date_parameters(first, last),
            "ai_types": list(options.ai_types),
            "feedback_lookback_days": options.feedback_lookback_days,
        },
    )


@_registered(
    "day",
    (
        "project_id",
        "day",
        "voice_requests",
        "voice_successes",
        "success_rate",
        "commands",
        "repeated_commands",
        "repeated_command_rate",
        "transcriptions",
        "correction_reported",
        "corrected",
        "correction_rate",
        "repeat_window_s",
    ),
)
def voice_metrics_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    # Voice requests from `repeat_window_s` before the range are read so the first command of a day can repeat
    # the last one of the day before; only events inside the range are counted. Only voice requests go through
    # the window (a sort by session): transcriptions are just counted.
    sql = f"""
SELECT project_id, day, voice_requests, voice_successes,
       if(voice_requests = 0, NULL, voice_successes / voice_requests) AS success_rate,
       commands, repeated_commands, if(commands = 0, NULL, repeated_commands / commands) AS repeated_command_rate,
       transcriptions, correction_reported, corrected,
       if(correction_reported = 0, NULL, corrected / correction_reported) AS correction_rate,
       {{repeat_window_s:UInt32}} AS repeat_window_s
FROM (
    SELECT project_id, toDate(ts) AS day,
           countIf(kind = 'voice_request') AS voice_requests,
           countIf(kind = 'voice_request' AND ok) AS voice_successes,
           countIf(kind = 'voice_request' AND command IS NOT NULL) AS commands,
           countIf(repeated) AS repeated_commands,
           countIf(kind = 'transcription') AS transcriptions,
           countIf(kind = 'transcription' AND corrected_flag IS NOT NULL) AS correction_reported,
           countIf(kind = 'transcription' AND corrected_flag) AS corrected
    FROM (
        SELECT project_id, event_type AS kind, timestamp AS ts, success AS ok, intent AS command,
               CAST(NULL, 'Nullable(Bool)') AS corrected_flag,
               {repeated_command_sql("{repeat_window_s:UInt32}")} AS repeated
        FROM {source}
        WHERE event_type = 'voice_request'
          AND timestamp >= toDateTime64({{date_from:Date}}, 3, 'UTC') - toIntervalSecond({{repeat_window_s:UInt32}})
          AND timestamp < toDateTime64({{date_to:Date}} + 1, 3, 'UTC')
        WINDOW {REPEAT_WINDOW}
        UNION ALL
        SELECT project_id, event_type AS kind, timestamp AS ts, success AS ok, CAST(NULL, 'Nullable(String)') AS command,
               transcription_corrected AS corrected_flag, false AS repeated
        FROM {source}
        WHERE event_type = 'transcription'
          AND timestamp >= toDateTime64({{date_from:Date}}, 3, 'UTC') AND timestamp < toDateTime64({{date_to:Date}} + 1, 3, 'UTC')
    )
    WHERE ts >= toDateTime64({{date_from:Date}}, 3, 'UTC')
    GROUP BY project_id, day
)"""
    return Query(sql, {**date_parameters(first, last), "repeat_window_s": options.repeat_window_s})


@_registered(
    "day",
    (
        "project_id",
        "day",
        "endpoint",
        "method",
        "requests",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "client_errors",
        "server_errors",
        "error_rate",
        "cache_reported",
        "cache_hits",
        "cache_hit_ratio",
    ),
)
def api_performance_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    sql = f"""
SELECT project_id, day, endpoint_key AS endpoint, method_key AS method, requests,
       q[1] AS p50_ms, q[2] AS p95_ms, q[3] AS p99_ms, client_errors, server_errors,
       server_errors / requests AS error_rate, cache_reported, cache_hits,
       if(cache_reported = 0, NULL, cache_hits / cache_reported) AS cache_hit_ratio
FROM (
    SELECT project_id, day, if(grouping(route) = 1, '*', route) AS endpoint_key,
           if(grouping(verb) = 1, '*', verb) AS method_key, count() AS requests,
           quantilesExactInclusive(0.5, 0.95, 0.99)(duration) AS q,
           countIf(code >= 400 AND code < 500) AS client_errors, countIf(code >= 500) AS server_errors,
           countIf(cache IS NOT NULL) AS cache_reported, countIf(cache) AS cache_hits
    FROM (
        SELECT project_id, toDate(timestamp) AS day, assumeNotNull(endpoint) AS route, assumeNotNull(method) AS verb,
               assumeNotNull(duration_ms) AS duration, assumeNotNull(status) AS code, cache_hit AS cache
        FROM {source}
        WHERE event_type = 'api_request' AND {_events_between()}
          AND endpoint IS NOT NULL AND method IS NOT NULL AND duration_ms IS NOT NULL AND status IS NOT NULL
    )
    GROUP BY GROUPING SETS ((project_id, day, route, verb), (project_id, day))
)"""
    return Query(sql, date_parameters(first, last))


@_registered(
    "day",
    (
        "project_id",
        "day",
        "feedback",
        "users",
        "avg_rating",
        *(f"rating_{r}" for r in RATINGS),
        "with_comment",
        "scored",
        "positive",
        "neutral",
        "negative",
        "avg_sentiment",
    ),
)
def feedback_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    ratings = ", ".join(f"countIf(f.rating = {r}) AS rating_{r}" for r in RATINGS)
    sql = f"""
SELECT f.project_id AS project_id, toDate(f.timestamp) AS day, count() AS feedback,
       uniqExactIf(f.person_id, f.person_id != '') AS users, avg(f.rating) AS avg_rating,
       {ratings},
       countIf(f.comment IS NOT NULL AND f.comment != '') AS with_comment,
       countIf(s.label IS NOT NULL) AS scored,
       countIf(s.label = 'positive') AS positive, countIf(s.label = 'neutral') AS neutral,
       countIf(s.label = 'negative') AS negative, avg(s.score) AS avg_sentiment
FROM (
    SELECT project_id, event_id, timestamp, person_id, assumeNotNull(rating) AS rating, comment
    FROM {source}
    WHERE event_type = 'feedback' AND {_events_between()} AND rating IS NOT NULL
) AS f
LEFT JOIN (
    SELECT project_id, event_id, sentiment_label AS label, sentiment_score AS score
    FROM feedback_scored FINAL
    WHERE {_events_between(1, 2)}
) AS s ON f.project_id = s.project_id AND f.event_id = s.event_id
GROUP BY project_id, day"""
    return Query(sql, date_parameters(first, last))


SURVEY_EVENT_TYPES = ("survey_shown", "survey_dismissed", "survey_answered")


def order_lines(source: str) -> str:
    """Each (project, event type, order_id)'s first order or refund event (by timestamp, then event_id) when it
    falls in the range and none of the `order_lookback_days` before the range has one: an order (or a refund)
    counts once, whichever events carry its order_id. The scan holds those days' order events
    (`scan.scan_select`); one GROUP BY over them holds both types and the look-back, so revenue_daily reads
    the scan once for its lines (docs/scaling.md)."""
    return f"""
    SELECT project_id, event_type = '{ORDER_EVENT_TYPE}' AS is_order, toDate(first.1) AS day,
           first.2 AS currency, first.3 AS amount, first.4 AS person, first.5 AS session, first.6 AS app_version
    FROM (
        SELECT project_id, event_type,
               argMin((timestamp, assumeNotNull(currency), assumeNotNull(revenue), person_id, session_id,
                       coalesce(app_version, '')), (timestamp, event_id)) AS first
        FROM {source}
        WHERE event_type IN ('{ORDER_EVENT_TYPE}', '{REFUND_EVENT_TYPE}')
          AND order_id IS NOT NULL AND currency IS NOT NULL AND revenue IS NOT NULL
          AND timestamp >= toDateTime64({{date_from:Date}} - {{order_lookback_days:UInt16}}, 3, 'UTC')
          AND timestamp < toDateTime64({{date_to:Date}} + 1, 3, 'UTC')
        GROUP BY project_id, event_type, assumeNotNull(order_id)
        HAVING first.1 >= toDateTime64({{date_from:Date}}, 3, 'UTC')
    )"""


FX_RATES_SQL = """(SELECT currency, day, toNullable(rate) AS rate FROM fx_rates FINAL
    WHERE reporting_currency = {reporting_currency:String})"""
"""The rates into the reporting currency, for an ASOF LEFT JOIN on (currency, day): NULL where it finds none
(revenue_daily, and experiments' money goals)."""


def _in_reporting_currency(alias: str) -> str:
    """The amount of `alias` (day, currency, amount) in the reporting currency at the rate in force that day,
    cut to 4 decimals; NULL without a rate."""
    return f"""if({alias}.currency = {{reporting_currency:String}}, {alias}.amount,
              CAST(toDecimal128({alias}.amount, 4) * toDecimal128(fx.rate, 8) AS Nullable(Decimal(38, 4))))"""


@_registered(
    "day",
    (
        "project_id",
        "day",
        "currency",
        "ai_session",
        "app_version",
        "orders",
        "buyers",
        "revenue",
        "refunded_orders",
        "refunds",
        "net_revenue",
        "average_order_value",
        "active_users",
        "conversion",
        "revenue_per_active_user",
        "reporting_currency",
        "unconverted",
    ),
    needs_activity=True,
)
def revenue_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    # Orders and refunds become lines in their own currency and in the reporting one (ASOF: the newest rate
    # on or before the line's day), aggregated per grouping set in one pass; currency '*' sums the converted
    # amounts. Refunds are counted on their own day, whose session and app version say nothing about the
    # order, so they only reach the rows that split neither (a split row of refunds alone is dropped). Active
    # users of the AI split are the persons who did (not) send an AI request that day.
    split = "(grouping(ai_session) = 0 OR grouping(app_version) = 0)"
    sql = f"""
SELECT t.project_id AS project_id, t.day AS day, t.currency_key AS currency, t.ai_key AS ai_session,
       t.app_key AS app_version, t.orders AS orders, t.buyers AS buyers, t.revenue AS revenue,
       if(t.unsplit, t.refunded_orders, NULL) AS refunded_orders, if(t.unsplit, t.refunds, NULL) AS refunds,
       if(t.unsplit, t.revenue - t.refunds, NULL) AS net_revenue,
       if(t.priced_orders = 0, NULL, t.revenue / t.priced_orders) AS average_order_value,
       multiIf(t.app_key != '*', NULL, t.ai_key = 'ai', coalesce(u.ai_users, 0),
               t.ai_key = 'no_ai', a.active_users - coalesce(u.ai_users, 0), a.active_users) AS active_users,
       if(active_users = 0, NULL, t.buyers / active_users) AS conversion,
       if(active_users = 0, NULL, t.revenue / active_users) AS revenue_per_active_user,
       {{reporting_currency:String}} AS reporting_currency, t.unconverted AS unconverted
FROM (
    SELECT project_id, day, if(grouping(currency) = 1, '*', currency) AS currency_key,
           if(grouping(ai_session) = 1, '*', ai_session) AS ai_key,
           if(grouping(app_version) = 1, '*', app_version) AS app_key, NOT {split} AS unsplit,
           countIf(is_order) AS orders, uniqExactIf(person, is_order) AS buyers,
           if(grouping(currency) = 1, countIf(is_order AND converted IS NOT NULL), orders) AS priced_orders,
           CAST(if(grouping(currency) = 1, coalesce(sumIf(converted, is_order), 0), sumIf(amount, is_order))
                AS Decimal(38, 4)) AS revenue,
           countIf(NOT is_order) AS refunded_orders,
           CAST(if(grouping(currency) = 1, coalesce(sumIf(converted, NOT is_order), 0),
                   sumIf(amount, NOT is_order)) AS Decimal(38, 4)) AS refunds,
           if({split}, countIf(is_order AND converted IS NULL), countIf(converted IS NULL)) AS unconverted
    FROM (
        SELECT o.project_id AS project_id, o.is_order AS is_order, o.day AS day, o.currency AS currency,
               o.person AS person, o.amount AS amount, {_in_reporting_currency("o")} AS converted,
               if(o.session IS NOT NULL AND (o.project_id, assumeNotNull(o.session)) IN (
                      SELECT project_id, assumeNotNull(session_id) FROM {source}
                      WHERE event_type IN {{ai_types:Array(String)}} AND session_id IS NOT NULL
                        AND {_events_between(SESSION_LOOKAROUND_DAYS, 1 + SESSION_LOOKAROUND_DAYS)}),
                  'ai', 'no_ai') AS ai_session,
               o.app_version AS app_version
        FROM ({order_lines(source)}) AS o
        ASOF LEFT JOIN {FX_RATES_SQL} AS fx ON o.currency = fx.currency AND o.day >= fx.day
    )
    GROUP BY GROUPING SETS ((project_id, day, currency), (project_id, day, currency, ai_session),
                            (project_id, day, currency, app_version), (project_id, day),
                            (project_id, day, ai_session))
    HAVING unsplit OR orders > 0
) AS t
LEFT JOIN ({ACTIVE_USERS_PER_DAY}) AS a ON t.project_id = a.project_id AND t.day = a.day
LEFT JOIN (
    SELECT project_id, toDate(timestamp) AS day, uniqExact(person_id) AS ai_users
    FROM {source}
    WHERE event_type IN {{ai_types:Array(String)}} AND {_events_between()} AND distinct_id != ''
    GROUP BY project_id, day
) AS u ON t.project_id = u.project_id AND t.day = u.day"""
    return Query(
        sql,
        {
            **date_parameters(first, last),
            "ai_types": list(options.ai_types),
            "reporting_currency": options.reporting_currency,
            "order_lookback_days": options.order_lookback_days,
        },
    )


@_registered(
    "day",
    (
        "project_id",
        "day",
        "fingerprint",
        "kind",
        "error_type",
        "location",
        "message",
        "events",
        "users",
        "first_at",
        "last_at",
    ),
)
def error_patterns_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    # Failures (pravis_schemas.error_patterns.failure_of): error events, 5xx API requests, failed AI requests,
    # grouped by the fingerprint the stream tier's detector computes too.
    failures, parameters = failures_sql(source, _events_between(), "project_id, timestamp, person_id")
    sql = f"""
SELECT project_id, toDate(timestamp) AS day, fingerprint, any(kind) AS kind, any(failure_type) AS error_type,
       any(place) AS location, any(message) AS message, count() AS events,
       uniqExactIf(person_id, person_id != '') AS users, min(timestamp) AS first_at, max(timestamp) AS last_at
FROM ({failures})
GROUP BY project_id, day, fingerprint"""
    return Query(sql, {**date_parameters(first, last), "ai_types": list(options.ai_types), **parameters})


FUNNEL_DAILY_FIGURES = (
    "entered",
    "reached",
    "median_from_previous_s",
    "p90_from_previous_s",
    "median_from_start_s",
    "p90_from_start_s",
)


# reads_events=False: funnel_daily reads `events FINAL` itself, since its step filters need columns the shared
# scan does not copy and its conversion window looks past the scan's days.
@_registered(
    "day",
    ("project_id", "day", "funnel_key", "definition_version", "step", "step_name", *FUNNEL_DAILY_FIGURES),
    reads_events=False,
)
def funnel_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    """Per saved funnel, entry day and step: the funnel of the units entering that day (docs/funnels.md)."""
    figures = ", ".join(FUNNEL_DAILY_FIGURES)
    parts = [
        f"""SELECT project_id, day, funnel_key, definition_version, step, step_name, {figures}
FROM funnel_daily WHERE day BETWEEN {{date_from:Date}} AND {{date_to:Date}} AND 0"""
    ]
    parameters = date_parameters(first, last)
    for i, stored in enumerate(options.funnels or ()):
        p = f"f{i}_"
        sql, funnel_parameters = funnel_sql(stored.definition, stored.project_id, per_day=True, prefix=p)
        parameters.update(funnel_parameters)
        parameters.update(
            {
                f"{p}key": stored.definition.key,
                f"{p}version": stored.version,
                f"{p}names": [s.label for s in stored.definition.steps],
            }
        )
        parts.append(
            f"""SELECT {{{p}project:String}} AS project_id, period AS day, {{{p}key:String}} AS funnel_key,
       {{{p}version:UInt32}} AS definition_version, step, {{{p}names:Array(String)}}[step] AS step_name, {figures}
FROM ({sql})"""
        )
    return Query("\nUNION ALL\n".join(parts), parameters)


@_registered(
    "day",
    (
        "project_id",
        "day",
        "survey_id",
        "survey_version",
        "question_id",
        "shown",
        "dismissed",
        "answered",
        "respondents",
        "responses",
        "avg_value",
        "promoters",
        "passives",
        "detractors",
        "value_counts",
        "choice_counts",
        "text_answers",
    ),
)
def survey_results_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    """Per survey version: a row with question_id '' counting shown/dismissed/answered events and
    respondents (persons), and one row per question counting its answers, value distribution and average,
    the NPS bands of its values (meaningful for NPS questions, docs/queries.md), choice counts and open-text
    answers."""
    sql = f"""
SELECT project_id, toDate(timestamp) AS day, assumeNotNull(survey_id) AS survey_id,
       assumeNotNull(survey_version) AS survey_version, '' AS question_id,
       countIf(event_type = 'survey_shown') AS shown, countIf(event_type = 'survey_dismissed') AS dismissed,
       countIf(event_type = 'survey_answered') AS answered,
       uniqExactIf(person_id, event_type = 'survey_answered' AND person_id != '') AS respondents,
       toUInt64(0) AS responses, CAST(NULL AS Nullable(Float64)) AS avg_value,
       toUInt64(0) AS promoters, toUInt64(0) AS passives, toUInt64(0) AS detractors,
       CAST(map(), 'Map(Int16, UInt64)') AS value_counts, CAST(map(), 'Map(String, UInt64)') AS choice_counts,
       toUInt64(0) AS text_answers
FROM {source}
WHERE event_type IN {{survey_types:Array(String)}} AND survey_id IS NOT NULL AND survey_version IS NOT NULL
  AND {_events_between()}
GROUP BY project_id, day, survey_id, survey_version
UNION ALL
SELECT project_id, toDate(timestamp) AS day, assumeNotNull(survey_id) AS survey_id,
       assumeNotNull(survey_version) AS survey_version, answer.question_id AS question_id,
       toUInt64(0) AS shown, toUInt64(0) AS dismissed, toUInt64(0) AS answered,
       uniqExactIf(person_id, person_id != '') AS respondents, count() AS responses,
       avg(answer.value) AS avg_value,
       countIf(answer.value >= {{promoter_min:Int16}}) AS promoters,
       countIf(answer.value > {{detractor_max:Int16}} AND answer.value < {{promoter_min:Int16}}) AS passives,
       countIf(answer.value <= {{detractor_max:Int16}}) AS detractors,
       CAST(sumMap(if(answer.value IS NULL, map(), map(assumeNotNull(answer.value), toUInt64(1)))), 'Map(Int16, UInt64)') AS value_counts,
       CAST(sumMap(mapFromArrays(answer.choices, arrayMap(c -> toUInt64(1), answer.choices))), 'Map(String, UInt64)') AS choice_counts,
       countIf(answer.text IS NOT NULL AND answer.text != '') AS text_answers
FROM {source}
ARRAY JOIN survey_answers AS answer
WHERE event_type = 'survey_answered' AND survey_id IS NOT NULL AND survey_version IS NOT NULL
  AND {_events_between()}
GROUP BY project_id, day, survey_id, survey_version, question_id"""
    parameters = {
        **date_parameters(first, last),
        "survey_types": list(SURVEY_EVENT_TYPES),
        "promoter_min": NPS_PROMOTER_MIN,
        "detractor_max": NPS_DETRACTOR_MAX,
    }
    return Query(sql, parameters)


# Issue 24: improvement opportunities at scale; the ranked list reads these for the days they were computed.
@_registered("day", DAILY_COLUMNS)
def opportunities_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    """Per subject (feature, voice intent) and day: the additive inputs of the improvement opportunities'
    score (pravis_schemas.opportunities)."""
    sql, parameters = daily_sql(source, "{date_from:Date}", "{date_to:Date}")
    return Query(sql, {**date_parameters(first, last), **parameters})


@_registered("day", USERS_COLUMNS)
def opportunity_users_daily(first: date, last: date, options: RollupOptions, source: str) -> Query:
    """Per subject and day: the persons who used it (ids, mapped to their persons when read)."""
    return Query(users_daily_sql(source, "{date_from:Date}", "{date_to:Date}"), date_parameters(first, last))


ROLLUPS: tuple[Rollup, ...] = tuple(BY_NAME.values())
"""Every rollup, in the order they run (user_activity_daily first: three others read it)."""


def rollups_named(names: list[str] | None) -> list[Rollup]:
    """The rollups called `names` in run order (all when None); unknown names raise ValueError."""
    if not names:
        return list(ROLLUPS)
    unknown = sorted(set(names) - BY_NAME.keys())
    if unknown:
        raise ValueError(f"unknown rollup {', '.join(unknown)}; known: {', '.join(BY_NAME)}")
    return [rollup for rollup in ROLLUPS if rollup.table in names]
