"""Repeated voice commands, defined once for the `voice_metrics_daily` rollup and the improvement
opportunities (pure: SQL text, no I/O).

A voice_request repeats a command when its session's previous voice_request (by timestamp, then event_id)
carried the same normalised `intent` at most the repeat window earlier: the assistant did not get it the first
time. The expression reads `project_id`, `session_id`, `intent`, `timestamp` and `event_id` of voice_request
rows and needs `REPEAT_WINDOW` in the query's WINDOW clause.
"""

from __future__ import annotations

REPEAT_WINDOW_S = 30
"""Default repeat window (the rollups' `RollupOptions.repeat_window_s`)."""

REPEAT_WINDOW = (
    "repeat_window AS (PARTITION BY project_id, session_id ORDER BY timestamp, event_id "
    "ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)"
)


def repeated_command_sql(window_s: str) -> str:
    """Boolean SQL: this voice_request repeats its session's previous command; `window_s` is fixed SQL of the
    caller giving the window in seconds (a query parameter or a constant)."""
    return f"""coalesce(
    session_id IS NOT NULL AND intent IS NOT NULL AND row_number() OVER repeat_window > 1
    AND lagInFrame(toNullable(intent)) OVER repeat_window = intent
    AND dateDiff('millisecond', lagInFrame(timestamp) OVER repeat_window, timestamp) <= {window_s} * 1000,
    false)"""
