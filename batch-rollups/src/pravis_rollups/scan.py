"""The shared scan: one read of deduplicated raw events, each with its person, that every event-reading rollup
of a run reads instead of `events FINAL` (pure, no I/O).

Reading FINAL is the dominant cost of a run (it merges every part's rows by key), so a run over several
rollups reads it once: `scan_select` copies the deduplicated rows and the columns every event-reading rollup
needs, for a window that covers all their look-arounds, and `pravis_rollups.jobs` passes that copy to each
rollup's `select` as its `source` (or, for a rollup run alone, the select itself as a subquery). The scan also
joins `person_overrides` once, so every rollup counting users counts `person_id` (docs/identity.md) without a
join of its own.
"""

from __future__ import annotations

from datetime import date

from pravis_schemas.events import ORDER_EVENT_TYPE, REFUND_EVENT_TYPE
from pravis_schemas.identity import person_id_sql, person_join

from pravis_rollups.rollups import SESSION_LOOKAROUND_DAYS, Query, RollupOptions, date_parameters

EVENT_COLUMNS = (
    "project_id",
    "event_id",
    "event_type",
    "timestamp",
    "distinct_id",
    "session_id",
    "feature_name",
    "interaction_id",
    "model_used",
    "success",
    "request_duration_ms",
    "completed",
    "follow_up",
    "intent",
    "transcription_corrected",
    "endpoint",
    "method",
    "duration_ms",
    "status",
    "cache_hit",
    "rating",
    "comment",
    "context",
    "order_id",
    "revenue",
    "currency",
    "app_version",
    "error_type",
    "error_message",
    *("survey_id", "survey_version", "survey_answers"),
)
"""The event columns the event-reading rollups use: a scan copies only these."""
SCAN_COLUMNS = (*EVENT_COLUMNS, "person_id")
"""The scan's columns: the events' and the person of each row."""


def scan_days_before(options: RollupOptions) -> int:
    """How many days before a range's first day the event-reading rollups look (sessions crossing midnight,
    feedback on earlier answers, a command repeating the one before midnight)."""
    repeat_days = -(-options.repeat_window_s // 86_400)
    return max(SESSION_LOOKAROUND_DAYS, options.feedback_lookback_days, repeat_days)


def scan_select(first: date, last: date, options: RollupOptions) -> Query:
    """Deduplicated events (SCAN_COLUMNS) that every event-reading rollup's `select` over [first, last] reads:
    from `scan_days_before` days before the range to the sessions' look-ahead after it, plus every later
    feedback event (feedback on an answer may come any time after it) and the orders and refunds of the
    `order_lookback_days` before (an order counts once however many days repeat its order_id)."""
    columns = ", ".join(f"e.{column} AS {column}" for column in EVENT_COLUMNS)
    until = f"toDateTime64({{date_to:Date}} + {1 + SESSION_LOOKAROUND_DAYS}, 3, 'UTC')"
    sql = f"""
SELECT {columns}, {person_id_sql("e", "po")} AS person_id
FROM events AS e FINAL
{person_join("e", "po")}
WHERE (e.timestamp >= toDateTime64({{date_from:Date}} - {{days_before:UInt16}}, 3, 'UTC')
       AND (e.timestamp < {until} OR e.event_type = 'feedback'))
   OR (e.event_type IN ('{ORDER_EVENT_TYPE}', '{REFUND_EVENT_TYPE}') AND e.timestamp < {until}
       AND e.timestamp >= toDateTime64({{date_from:Date}} - {{order_days:UInt16}}, 3, 'UTC'))"""
    parameters = {"days_before": scan_days_before(options), "order_days": options.order_lookback_days}
    return Query(sql, {**date_parameters(first, last), **parameters})
