# ruff: noqa: E501 - SQL text stays on the lines it reads best on
"""The lowest-rated feedback of a date range (pure: SQL text, no I/O).

One query for the weekly report's "lowest-rated interactions" (`pravis_rollups.feedback_report`) and the
product page's evidence of an improvement opportunity (`pravis_schemas.opportunities`): each feedback event
in [date_from, date_to] with its sentiment (`feedback_scored`) and the AI requests of its interaction (their
event types and model), lowest rating first, then oldest.
"""

from __future__ import annotations

from pravis_schemas.events import AI_EVENT_TYPES

LOWEST_RATED_COLUMNS = (
    "project_id",
    "timestamp",
    "rating",
    "interaction_id",
    "ai_event_types",
    "model_used",
    "sentiment",
    "context",
    "comment",
)


def lowest_rated_sql(where: str = "1") -> tuple[str, dict[str, object]]:
    """SELECT of `LOWEST_RATED_COLUMNS`, the `{limit:UInt32}` lowest-rated feedback events per project in
    [`{date_from:Date}`, `{date_to:Date}`] that match `where` (fixed SQL of the caller over the `events`
    columns, its values as parameters), and the parameters it sets itself. AI requests are looked up from the
    day before the range on (a client's clock may put feedback before its request's day), sentiment one day
    around it (the stream tier scores with its own clock)."""
    sql = f"""
SELECT f.project_id AS project_id, f.timestamp AS timestamp, f.rating AS rating, f.interaction_id AS interaction_id,
       a.kinds AS ai_event_types, a.model AS model_used, s.sentiment_label AS sentiment, f.context AS context,
       f.comment AS comment
FROM (
    SELECT project_id, event_id, timestamp, assumeNotNull(rating) AS rating, interaction_id, context, comment
    FROM events FINAL
    WHERE event_type = 'feedback' AND rating IS NOT NULL
      AND timestamp >= toDateTime64({{date_from:Date}}, 3, 'UTC') AND timestamp < toDateTime64({{date_to:Date}} + 1, 3, 'UTC')
      AND ({where})
) AS f
LEFT JOIN (
    SELECT project_id, event_id, sentiment_label FROM feedback_scored FINAL
    WHERE timestamp >= toDateTime64({{date_from:Date}} - 1, 3, 'UTC') AND timestamp < toDateTime64({{date_to:Date}} + 2, 3, 'UTC')
) AS s ON f.project_id = s.project_id AND f.event_id = s.event_id
LEFT JOIN (
    SELECT project_id, assumeNotNull(interaction_id) AS interaction,
           arrayStringConcat(arraySort(groupUniqArray(event_type)), ', ') AS kinds, argMin(model_used, timestamp) AS model
    FROM events FINAL
    WHERE event_type IN {{lowest_ai_types:Array(String)}} AND interaction_id IS NOT NULL
      AND timestamp >= toDateTime64({{date_from:Date}} - 1, 3, 'UTC') AND timestamp < toDateTime64({{date_to:Date}} + 1, 3, 'UTC')
    GROUP BY project_id, interaction
) AS a ON f.project_id = a.project_id AND f.interaction_id = a.interaction
ORDER BY f.project_id, f.rating, f.timestamp, f.event_id
LIMIT {{limit:UInt32}} BY f.project_id"""
    return sql, {"lowest_ai_types": list(AI_EVENT_TYPES)}
