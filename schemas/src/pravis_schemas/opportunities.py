# ruff: noqa: E501 - SQL text stays on the lines it reads best on
"""Improvement opportunities: one ranked list of the product's features and voice intents by how much they
seem to hurt their users, with the evidence of each row (pure: SQL text, no I/O).

A subject is a feature (`feature_use.feature_name`) or a voice intent (`voice_request.intent`) used in the
range. What the warehouse knows about it (docs/queries.md "Improvement opportunities"):

- usage: its events (`uses`) and the persons who used it (`users`, through the identity graph);
- ratings and sentiment: feedback about it, which is feedback whose `context` names the feature, or whose
  `interaction_id` is a voice_request's with the intent; `low_rated` counts ratings <= `LOW_RATING_MAX`,
  `negative` the comments the stream tier scored negative (`feedback_scored`);
- repeated commands (intents): `pravis_schemas.voice_sql`'s rule, as `voice_metrics_daily` counts them;
- failures: events carry no feature, so a failure (`pravis_schemas.error_patterns`: error events, 5xx API
  requests, failed AI requests) belongs to the feature or intent its session used last, at most
  `ATTRIBUTION_WINDOW_S` before it; `failed_uses` counts the uses followed by at least one failure;
- funnel drop-off: a saved funnel covers a subject when one of its steps is a feature_use filtered on
  `feature_name`, or a voice_request filtered on `intent`, equal to it; the drop-off is the share of the units
  that reached that step (`funnel_daily`, summed over the range's entry days) and not the next one; with
  several covering steps the worst one counts. A last step has no next one and covers nothing.

The score is `SCORE_FORMULA`: each input is a count of bad outcomes over its observations, damped by
`DAMPING` more observations so that one bad rating does not outrank a hundred; their weighted mean over the
inputs the subject has is its severity, multiplied by ln(1 + users) so that reach counts with diminishing
returns. It is computed in SQL only (`ranked_sql`), so the page, the CSV, Grafana and the weekly report show
one number. Everything is computed at query time from `events FINAL` and `funnel_daily`: distinct users over a
range and the evidence rows are not additive over days (docs/scaling.md has the cost).

Only the view's `{project:String}`, `{date_from:Date}` and `{date_to:Date}` are placeholders of the ranked
list (Grafana replaces exactly those); its constants are numbers of this module. The evidence queries take
the subject as a parameter too.
"""

from __future__ import annotations

from typing import Any, Literal

from pravis_schemas.error_patterns import failures_sql
from pravis_schemas.events import AI_EVENT_TYPES
from pravis_schemas.feedback_sql import lowest_rated_sql
from pravis_schemas.identity import person_id_sql, person_join
from pravis_schemas.voice_sql import REPEAT_WINDOW, REPEAT_WINDOW_S, repeated_command_sql

Kind = Literal["feature", "intent"]
KINDS: tuple[Kind, ...] = ("feature", "intent")
SUBJECT_MAX = 200
"""As `feature_name` and `intent` are accepted (pravis_schemas.events)."""

LOW_RATING_MAX = 2
"""A rating at or below this is a low rating (the weekly report's complaint terms use the same bound)."""
ATTRIBUTION_WINDOW_S = 60
"""A failure counts against the feature or intent its session used last at most this many seconds before."""
DAMPING = 5
"""Observations added to each input's denominator: bad / (observations + DAMPING)."""
WEIGHTS: tuple[tuple[str, str, str, float], ...] = (
    ("low_rated", "feedback", f"ratings <= {LOW_RATING_MAX} / rated feedback", 0.25),
    ("negative", "scored", "negative / sentiment-scored feedback", 0.20),
    ("failed_uses", "uses", f"uses followed by a failure within {ATTRIBUTION_WINDOW_S} s / uses", 0.25),
    ("repeated_commands", "commands", "repeated commands / commands (intents)", 0.15),
    ("funnel_dropped", "funnel_reached", "funnel drop-off after its step / units reaching it", 0.15),
)
"""(bad-outcome column, observations column, what it means, weight) of every input of the score."""
SCORE_FORMULA = (
    "score = severity * ln(1 + users); severity = Σ w·bad/(n + "
    f"{DAMPING}) / Σ w over the inputs with n > 0, where "
    + "; ".join(f"{meaning} (w {weight:.2f})" for _, _, meaning, weight in WEIGHTS)
)
RANKED = 20
"""Rows of the ranked list."""
EVIDENCE_ROWS = 20

_AI_TYPES = repr(tuple(AI_EVENT_TYPES))
_RANGE_START = "toDateTime64({date_from:Date}, 3, 'UTC')"
_RANGE_END = "toDateTime64({date_to:Date} + 1, 3, 'UTC')"


def _score_sql() -> str:
    weighted = " + ".join(
        f"{weight} * if({n} = 0, 0, {bad} / ({n} + {DAMPING}))" for bad, n, _, weight in WEIGHTS
    )
    total = " + ".join(f"{weight} * ({n} > 0)" for _, n, _, weight in WEIGHTS)
    return f"coalesce(({weighted}) / nullIf({total}, 0), 0) * log(1 + users)"


_USE = """e.distinct_id != ''
      AND ((e.event_type = 'feature_use' AND e.feature_name IS NOT NULL)
           OR (e.event_type = 'voice_request' AND e.intent IS NOT NULL))"""
"""An event `e` that uses a subject."""


def _uses(until_s: int, with_person: bool) -> str:
    """Uses of every subject from the range's start until `until_s` seconds after its end."""
    person = f"{person_id_sql('e', 'po')}" if with_person else "''"
    join = person_join("e", "po") if with_person else ""
    return f"""SELECT if(e.event_type = 'feature_use', 'feature', 'intent') AS kind,
           assumeNotNull(if(e.event_type = 'feature_use', e.feature_name, e.intent)) AS subject,
           toString(e.event_id) AS use_id, toUnixTimestamp64Milli(e.timestamp) AS ts,
           ifNull(e.session_id, '') AS session, {person} AS person
    FROM events AS e FINAL
    {join}
    WHERE e.project_id = {{project:String}} AND {_USE}
      AND e.timestamp >= {_RANGE_START} AND e.timestamp < {_RANGE_END} + toIntervalSecond({int(until_s)})"""


INTENT_OF_INTERACTION = f"""SELECT assumeNotNull(interaction_id) AS interaction, any(assumeNotNull(intent)) AS interaction_intent
    FROM events FINAL
    WHERE project_id = {{project:String}} AND event_type = 'voice_request' AND intent IS NOT NULL
      AND interaction_id IS NOT NULL
      AND timestamp >= toDateTime64({{date_from:Date}} - 1, 3, 'UTC') AND timestamp < {_RANGE_END}
    GROUP BY interaction"""
"""The intent of each voice interaction feedback of the range may rate (from the day before the range on, as
the weekly report looks AI requests up)."""


def attributed_failures_sql(fingerprint: bool) -> tuple[str, dict[str, Any]]:
    """Failures of the range's sessions, each with the use it belongs to (subject_kind, subject, use_id): the
    session's latest use at or before it, at most ATTRIBUTION_WINDOW_S earlier, among the uses in the range.
    Failures up to the window after the range's end count for the range's last uses."""
    failures, parameters = failures_sql(
        "events FINAL",
        f"project_id = {{project:String}} AND session_id IS NOT NULL AND timestamp >= {_RANGE_START} "
        f"AND timestamp < {_RANGE_END} + toIntervalSecond({ATTRIBUTION_WINDOW_S})",
        "project_id, timestamp, assumeNotNull(session_id) AS session",
        ai_types=_AI_TYPES,
        fingerprint=fingerprint,
    )
    sql = f"""SELECT u.kind AS subject_kind, u.subject AS subject, u.use_id AS use_id, f.*
FROM (SELECT *, toUnixTimestamp64Milli(timestamp) AS ts FROM ({failures})) AS f
ASOF INNER JOIN (
    {_uses(ATTRIBUTION_WINDOW_S, with_person=False)}
      AND e.session_id IS NOT NULL
) AS u ON f.session = u.session AND f.ts >= u.ts
WHERE f.ts - u.ts <= {ATTRIBUTION_WINDOW_S * 1000} AND u.ts < toUnixTimestamp64Milli({_RANGE_END})"""
    return sql, parameters


def _url(page: str, extra: str, anchor: str) -> str:
    return (
        f"concat('/{page}?project=', encodeURLComponent({{project:String}}), '&from=', toString({{date_from:Date}}), "
        f"'&to=', toString({{date_to:Date}}), {extra}'#{anchor}')"
    )


def ranked_sql() -> str:
    """The ranked list of the project's subjects over [date_from, date_to], worst first (`RANKED` rows):
    the score, every input count and share, and the evidence (the lowest-rated comment, the most frequent
    failure, the worst covering funnel step) with the dashboard links that show it."""
    failures, _ = attributed_failures_sql(fingerprint=False)
    shown = "'&opportunity=', encodeURLComponent(concat(u.kind, ':', u.subject)), "
    return f"""SELECT concat(u.kind, ': ', u.subject) AS opportunity, u.kind AS kind, u.subject AS subject,
       round({_score_sql()}, 4) AS score,
       u.users AS users, u.uses AS uses, f.feedback AS feedback, f.low_rated AS low_rated,
       if(feedback = 0, NULL, low_rated / feedback) AS low_rating_share,
       f.scored AS scored, f.negative AS negative, if(scored = 0, NULL, negative / scored) AS negative_share,
       r.commands AS commands, r.repeated_commands AS repeated_commands,
       if(commands = 0, NULL, repeated_commands / commands) AS repeated_command_rate,
       x.failed_uses AS failed_uses, x.failures AS failures, failed_uses / uses AS failure_rate,
       d.reached AS funnel_reached, d.dropped AS funnel_dropped,
       if(funnel_reached = 0, NULL, funnel_dropped / funnel_reached) AS funnel_dropoff,
       f.worst_comment AS worst_comment, ifNull(x.top_failure, '') AS top_failure,
       if(funnel_reached = 0, '', concat(d.funnel_key, ': step ', toString(d.step), ' ', d.step_name)) AS funnel_step,
       if(feedback = 0, '', {_url("product", shown, "panel-opportunity_feedback")}) AS feedback_url,
       if(failures = 0, '', {_url("product", shown, "panel-opportunity_failures")}) AS failures_url,
       if(funnel_reached = 0, '', {_url("product", "'&funnel=', encodeURLComponent(d.funnel_key), ", "panel-funnel_steps")}) AS funnel_url
FROM (
    SELECT kind, subject, count() AS uses, uniqExact(person) AS users
    FROM ({_uses(0, with_person=True)})
    WHERE ts < toUnixTimestamp64Milli({_RANGE_END})
    GROUP BY kind, subject
) AS u
LEFT JOIN (
    SELECT t.1 AS kind, t.2 AS subject, count() AS feedback, countIf(rating <= {LOW_RATING_MAX}) AS low_rated,
           countIf(label IS NOT NULL) AS scored, countIf(label = 'negative') AS negative,
           argMinIf(concat('(', toString(rating), ') ', comment), (rating, timestamp, event_id), comment != '') AS worst_comment
    FROM (
        SELECT fb.event_id AS event_id, fb.timestamp AS timestamp, fb.rating AS rating, fb.comment AS comment,
               fb.subjects AS subjects, sc.label AS label
        FROM (
            SELECT f.event_id AS event_id, f.timestamp AS timestamp, assumeNotNull(f.rating) AS rating,
                   ifNull(f.comment, '') AS comment,
                   arrayFilter(t -> t.2 != '', [('feature', ifNull(f.context, '')), ('intent', i.interaction_intent)]) AS subjects
            FROM events AS f FINAL
            LEFT JOIN ({INTENT_OF_INTERACTION}) AS i ON f.interaction_id = i.interaction
            WHERE f.project_id = {{project:String}} AND f.event_type = 'feedback' AND f.rating IS NOT NULL
              AND f.timestamp >= {_RANGE_START} AND f.timestamp < {_RANGE_END}
        ) AS fb
        LEFT JOIN (
            SELECT event_id, sentiment_label AS label FROM feedback_scored FINAL
            WHERE project_id = {{project:String}}
              AND timestamp >= toDateTime64({{date_from:Date}} - 1, 3, 'UTC') AND timestamp < toDateTime64({{date_to:Date}} + 2, 3, 'UTC')
        ) AS sc ON fb.event_id = sc.event_id
    )
    ARRAY JOIN subjects AS t
    GROUP BY kind, subject
) AS f ON f.kind = u.kind AND f.subject = u.subject
LEFT JOIN (
    SELECT 'intent' AS kind, assumeNotNull(intent) AS subject, count() AS commands, countIf(repeated) AS repeated_commands
    FROM (
        SELECT intent, timestamp, {repeated_command_sql(str(REPEAT_WINDOW_S))} AS repeated
        FROM events FINAL
        WHERE project_id = {{project:String}} AND event_type = 'voice_request'
          AND timestamp >= {_RANGE_START} - toIntervalSecond({REPEAT_WINDOW_S}) AND timestamp < {_RANGE_END}
        WINDOW {REPEAT_WINDOW}
    )
    WHERE intent IS NOT NULL AND timestamp >= {_RANGE_START}
    GROUP BY subject
) AS r ON r.kind = u.kind AND r.subject = u.subject
LEFT JOIN (
    SELECT subject_kind AS kind, subject, sum(n) AS failures,
           length(arrayDistinct(arrayFlatten(groupArray(ids)))) AS failed_uses,
           argMin(label, (-toInt64(n), label)) AS top_failure
    FROM (
        SELECT subject_kind, subject, if(place = '', failure_type, concat(place, ' · ', failure_type)) AS label,
               count() AS n, groupUniqArray(use_id) AS ids
        FROM ({failures})
        GROUP BY subject_kind, subject, label
    )
    GROUP BY subject_kind, subject
) AS x ON x.kind = u.kind AND x.subject = u.subject
LEFT JOIN (
    SELECT c.kind AS kind, c.subject AS subject,
           argMin((c.funnel_key, c.step, c.step_name, h.reached, h.reached - n.reached),
                  (-(h.reached - n.reached) / (h.reached + {DAMPING}), c.funnel_key, c.step)) AS worst,
           worst.1 AS funnel_key, worst.2 AS step, worst.3 AS step_name, worst.4 AS reached, worst.5 AS dropped
    FROM (
        SELECT DISTINCT funnel_key, version, toUInt8(step) AS step, toUInt8(step + 1) AS next_step,
               if(JSONExtractString(step_json, 'event_type') = 'feature_use', 'feature', 'intent') AS kind,
               if(JSONType(filter_json, 'equals') = 'String', JSONExtractString(filter_json, 'equals'),
                  JSONExtractRaw(filter_json, 'equals')) AS subject,
               if(JSONExtractString(step_json, 'name') = '', JSONExtractString(step_json, 'event_type'),
                  JSONExtractString(step_json, 'name')) AS step_name
        FROM (
            SELECT funnel_key, version, JSONExtractArrayRaw(definition, 'steps') AS steps
            FROM funnels FINAL
            WHERE project_id = {{project:String}}
            ORDER BY version DESC LIMIT 1 BY funnel_key
        )
        ARRAY JOIN steps AS step_json, arrayEnumerate(steps) AS step
        ARRAY JOIN JSONExtractArrayRaw(step_json, 'filters') AS filter_json
        WHERE step < length(steps)
          AND (JSONExtractString(step_json, 'event_type'), JSONExtractString(filter_json, 'property'))
              IN (('feature_use', 'feature_name'), ('voice_request', 'intent'))
    ) AS c
    LEFT JOIN (
        SELECT funnel_key, definition_version, step, sum(reached) AS reached FROM funnel_daily
        WHERE project_id = {{project:String}} AND day BETWEEN {{date_from:Date}} AND {{date_to:Date}}
        GROUP BY funnel_key, definition_version, step
    ) AS h ON h.funnel_key = c.funnel_key AND h.definition_version = c.version AND h.step = c.step
    LEFT JOIN (
        SELECT funnel_key, definition_version, step, sum(reached) AS reached FROM funnel_daily
        WHERE project_id = {{project:String}} AND day BETWEEN {{date_from:Date}} AND {{date_to:Date}}
        GROUP BY funnel_key, definition_version, step
    ) AS n ON n.funnel_key = c.funnel_key AND n.definition_version = c.version AND n.step = c.next_step
    GROUP BY kind, subject
) AS d ON d.kind = u.kind AND d.subject = u.subject
ORDER BY score DESC, kind, subject
LIMIT {RANKED}"""


PROJECTS_WITH_SUBJECTS_SQL = f"""SELECT DISTINCT e.project_id FROM events AS e
WHERE {_USE}
  AND e.timestamp >= {_RANGE_START} AND e.timestamp < {_RANGE_END}
ORDER BY e.project_id"""
"""The projects whose ranked list over [date_from, date_to] has rows: a subject used in the range (the weekly
report walks them, with feedback or without: failures, repeats and drop-off make opportunities too)."""


def parse_subject(text: str) -> tuple[Kind, str]:
    """`feature:<name>` or `intent:<intent>` (the dashboards' `?opportunity=`); ValueError says what is
    wrong."""
    kind, separator, subject = text.partition(":")
    if not separator or kind not in KINDS:
        raise ValueError(f"expected feature:<name> or intent:<intent>, got {text[:60]!r}")
    if not subject or len(subject) > SUBJECT_MAX:
        raise ValueError(f"the {kind} must be 1 to {SUBJECT_MAX} characters")
    return kind, subject  # type: ignore[return-value]


def feedback_evidence_sql(kind: Kind) -> tuple[str, dict[str, Any]]:
    """The lowest-rated feedback about one subject (`{subject:String}`), as the weekly report lists the
    lowest-rated interactions (`pravis_schemas.feedback_sql`); `{limit:UInt32}` is set here."""
    if kind == "feature":
        where = "project_id = {project:String} AND context = {subject:String}"
    else:
        where = (
            "project_id = {project:String} AND interaction_id IN "
            f"(SELECT interaction FROM ({INTENT_OF_INTERACTION}) WHERE interaction_intent = {{subject:String}})"
        )
    sql, parameters = lowest_rated_sql(where)
    return sql, {**parameters, "limit": EVIDENCE_ROWS}


def failure_evidence_sql(kind: Kind) -> tuple[str, dict[str, Any]]:
    """The failures counted against one subject (`{subject:String}`), by error pattern (the fingerprint of
    the tech-ops page's error patterns): most frequent first."""
    failures, parameters = attributed_failures_sql(fingerprint=True)
    sql = f"""SELECT fingerprint, any(kind) AS failure_kind, any(failure_type) AS error_type, any(place) AS location,
       any(message) AS message, count() AS failures, uniqExact(use_id) AS failed_uses,
       min(timestamp) AS first_at, max(timestamp) AS last_at
FROM ({failures})
WHERE subject_kind = {{kind:String}} AND subject = {{subject:String}}
GROUP BY fingerprint
ORDER BY failures DESC, fingerprint
LIMIT {EVIDENCE_ROWS}"""
    return sql, {**parameters, "kind": kind}
