# ruff: noqa: E501 - SQL text stays on the lines it reads best on
"""Improvement opportunities: one ranked list of the product's features and voice intents by how much they
seem to hurt their users, with the evidence of each row (pure: SQL text, no I/O).

A subject is a feature (`feature_use.feature_name`) or a voice intent (`voice_request.intent`) used in the
range. What the warehouse knows about it (docs/queries.md "Improvement opportunities"):

- usage: its events (`uses`) and the persons who used it (`users`, through the identity graph);
- ratings and sentiment: feedback about it, which is feedback whose `context` names the feature, or whose
  `interaction_id` is the one of a voice_request with the intent sent on the feedback's day or the day before
  (a client's clock may put feedback after midnight); `low_rated` counts ratings <= `LOW_RATING_MAX`,
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
one number.

Every input but the users adds up over days, each counted on the day of its event (a failure on the day of
the use it belongs to), so the `opportunities_daily` rollup (`daily_sql`) keeps them per project, day and
subject, with the day's worst comment and failure counts by label; the users are persons over the whole
range, so `opportunity_users_daily` (`users_daily_sql`) keeps who used each subject each day and the ranked
list maps those ids to their persons now (a merge since the day was computed counts, as for
`user_activity_daily`). `ranked_sql` reads both rollups for the days `rollup_runs` says they were computed for
and computes the other days of the range from `events FINAL` with the same SQL, so the list is exact whatever
was rolled up (docs/scaling.md has the cost).

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

SHARE_COLUMNS = (
    "low_rating_share",
    "negative_share",
    "repeated_command_rate",
    "failure_rate",
    "funnel_dropoff",
)
"""The ranked list's shares (shown as percentages)."""
EVIDENCE_LINKS = (
    ("worst_comment", "feedback_url"),
    ("top_failure", "failures_url"),
    ("funnel_step", "funnel_url"),
)
"""(evidence column, the URL of the page showing that evidence) of every row of the ranked list."""
SHOWN_COLUMNS = ("score", "users", "uses", *SHARE_COLUMNS, *(text for text, _ in EVIDENCE_LINKS))
"""What the product page and `pravis opportunities` show of a row, after its `opportunity` label."""

DAILY_TABLE = "opportunities_daily"
USERS_TABLE = "opportunity_users_daily"
DAILY_COUNTS = (
    "uses",
    "feedback",
    "low_rated",
    "scored",
    "negative",
    "commands",
    "repeated_commands",
    "failed_uses",
    "failures",
)
"""The additive inputs `opportunities_daily` keeps per project, day and subject."""
DAILY_COLUMNS = (
    "project_id",
    "day",
    "kind",
    "subject",
    *DAILY_COUNTS,
    "worst_comment",
    "worst_comment_key",
    "failure_labels",
)
"""`opportunities_daily`'s columns, in the order `daily_sql` returns them: the counts, the day's lowest-rated
comment with its (rating, timestamp, event_id) ordering key, and the failures counted per label."""
USERS_COLUMNS = ("project_id", "day", "kind", "subject", "person_id")
"""`opportunity_users_daily`'s columns, in the order `users_daily_sql` returns them."""

_AI_TYPES = repr(tuple(AI_EVENT_TYPES))
_KIND = "if(event_type = 'feature_use', 'feature', 'intent')"
_SUBJECT = "assumeNotNull(if(event_type = 'feature_use', feature_name, intent))"
_IS_USE = (
    "distinct_id != '' AND ((event_type = 'feature_use' AND feature_name IS NOT NULL) "
    "OR (event_type = 'voice_request' AND intent IS NOT NULL))"
)
_NO_COMMENT = (
    "'' AS comment_text, "
    "(toUInt8(0), toDateTime64(0, 3, 'UTC'), toUUID('00000000-0000-0000-0000-000000000000')) AS comment_key"
)
_NO_FAILURES = "CAST(map(), 'Map(String, UInt64)') AS labels"
_PROJECT = "project_id = {project:String}"


def _start(day: str) -> str:
    """The first instant of the day `day` (a Date expression of this module)."""
    return f"toDateTime64({day}, 3, 'UTC')"


def _end(day: str) -> str:
    """The first instant after the day `day`."""
    return f"toDateTime64({day} + 1, 3, 'UTC')"


def _score_sql() -> str:
    weighted = " + ".join(
        f"{weight} * if({n} = 0, 0, {bad} / ({n} + {DAMPING}))" for bad, n, _, weight in WEIGHTS
    )
    total = " + ".join(f"{weight} * ({n} > 0)" for _, n, _, weight in WEIGHTS)
    return f"coalesce(({weighted}) / nullIf({total}, 0), 0) * log(1 + users)"


def attributed_failures_sql(
    fingerprint: bool,
    source: str = "events FINAL",
    scope: str = _PROJECT,
    first: str = "{date_from:Date}",
    last: str = "{date_to:Date}",
) -> tuple[str, dict[str, Any]]:
    """Failures of the sessions of the days [first, last], each with the use it belongs to (subject_kind,
    subject, use_id, use_day): the session's latest use at or before it, at most ATTRIBUTION_WINDOW_S earlier,
    among the uses of those days. Failures up to the window after the last day count for its last uses.
    `source` (raw events), `scope` (a condition on them) and the Date expressions `first` and `last` are fixed
    SQL of the caller."""
    until = f"{_end(last)} + toIntervalSecond({ATTRIBUTION_WINDOW_S})"
    failures, parameters = failures_sql(
        source,
        f"{scope} AND session_id IS NOT NULL AND timestamp >= {_start(first)} AND timestamp < {until}",
        "project_id, timestamp, assumeNotNull(session_id) AS session",
        ai_types=_AI_TYPES,
        fingerprint=fingerprint,
    )
    sql = f"""SELECT u.kind AS subject_kind, u.subject AS subject, u.use_id AS use_id, u.day AS use_day, f.*
FROM (SELECT *, toUnixTimestamp64Milli(timestamp) AS ts FROM ({failures})) AS f
ASOF INNER JOIN (
    SELECT project_id, {_KIND} AS kind, {_SUBJECT} AS subject, toString(event_id) AS use_id,
           toUnixTimestamp64Milli(timestamp) AS ts, toDate(timestamp) AS day, assumeNotNull(session_id) AS session
    FROM {source}
    WHERE {scope} AND {_IS_USE} AND session_id IS NOT NULL
      AND timestamp >= {_start(first)} AND timestamp < {until}
) AS u ON f.project_id = u.project_id AND f.session = u.session AND f.ts >= u.ts
WHERE f.ts - u.ts <= {ATTRIBUTION_WINDOW_S * 1000} AND u.ts < toUnixTimestamp64Milli({_end(last)})"""
    return sql, parameters


def _part(group: str, counts: dict[str, str], comment: str = _NO_COMMENT, labels: str = _NO_FAILURES) -> str:
    """The select list of one part of `daily_sql`: its group columns, then every count (0 where the part has
    none of it), the comment and the failure labels."""
    listed = ", ".join(f"{counts.get(name, 'toUInt64(0)')} AS {name}" for name in DAILY_COUNTS)
    return f"{group}, {listed}, {comment}, {labels}"


def daily_sql(source: str, first: str, last: str, scope: str = "1") -> tuple[str, dict[str, Any]]:
    """Rows of `DAILY_COLUMNS` for the days [first, last] (Date expressions) and their parameters: every
    input of the score a day adds, per project and subject, from `source` (deduplicated raw events, with
    `context` and the columns of `pravis_schemas.error_patterns.failures_sql`) and `feedback_scored`, both
    filtered by `scope`. It reads events from the day before `first` (the interactions feedback rates, the
    command a first command of the day repeats) to ATTRIBUTION_WINDOW_S after `last`. All arguments are fixed
    SQL of the caller."""
    failures, parameters = attributed_failures_sql(False, source, scope, first, last)
    group = "project_id, day, kind, subject"
    sql = f"""SELECT {group}, {", ".join(f"sum({name}) AS {name}" for name in DAILY_COUNTS)},
       argMinIf(comment_text, comment_key, comment_text != '') AS worst_comment,
       minIf(comment_key, comment_text != '') AS worst_comment_key,
       CAST(sumMap(labels), 'Map(String, UInt64)') AS failure_labels
FROM (
    SELECT {
        _part(
            f"project_id, toDate(timestamp) AS day, {_KIND} AS kind, {_SUBJECT} AS subject",
            {"uses": "count()"},
        )
    }
    FROM {source}
    WHERE {scope} AND {_IS_USE} AND timestamp >= {_start(first)} AND timestamp < {_end(last)}
    GROUP BY {group}
    UNION ALL
    SELECT {
        _part(
            "project_id, day, t.1 AS kind, t.2 AS subject",
            {
                "feedback": "count()",
                "low_rated": f"countIf(rating <= {LOW_RATING_MAX})",
                "scored": "countIf(label IS NOT NULL)",
                "negative": "countIf(label = 'negative')",
            },
            "argMinIf(concat('(', toString(rating), ') ', comment), (rating, timestamp, event_id), comment != '') "
            "AS comment_text, minIf((rating, timestamp, event_id), comment != '') AS comment_key",
        )
    }
    FROM (
        SELECT f.project_id AS project_id, f.event_id AS event_id, f.timestamp AS timestamp, f.day AS day,
               f.rating AS rating, f.comment AS comment, sc.label AS label,
               arrayFilter(t -> t.2 != '', [('feature', f.context),
                   ('intent', arrayFirst(v -> v.1 BETWEEN f.day - 1 AND f.day, i.voices).2)]) AS subjects
        FROM (
            SELECT project_id, event_id, timestamp, toDate(timestamp) AS day, assumeNotNull(rating) AS rating,
                   ifNull(comment, '') AS comment, ifNull(context, '') AS context, interaction_id
            FROM {source}
            WHERE {scope} AND event_type = 'feedback' AND rating IS NOT NULL
              AND timestamp >= {_start(first)} AND timestamp < {_end(last)}
        ) AS f
        LEFT JOIN (
            SELECT project_id, assumeNotNull(interaction_id) AS interaction,
                   groupArray((toDate(timestamp), assumeNotNull(intent))) AS voices
            FROM {source}
            WHERE {
        scope
    } AND event_type = 'voice_request' AND intent IS NOT NULL AND interaction_id IS NOT NULL
              AND timestamp >= {_start(f"{first} - 1")} AND timestamp < {_end(last)}
            GROUP BY project_id, interaction
        ) AS i ON f.project_id = i.project_id AND f.interaction_id = i.interaction
        LEFT JOIN (
            SELECT project_id, event_id, sentiment_label AS label FROM feedback_scored FINAL
            WHERE {scope} AND timestamp >= {_start(f"{first} - 1")} AND timestamp < {_end(f"{last} + 1")}
        ) AS sc ON f.project_id = sc.project_id AND f.event_id = sc.event_id
    )
    ARRAY JOIN subjects AS t
    GROUP BY {group}
    UNION ALL
    SELECT {
        _part(
            "project_id, toDate(timestamp) AS day, 'intent' AS kind, assumeNotNull(intent) AS subject",
            {"commands": "count()", "repeated_commands": "countIf(repeated)"},
        )
    }
    FROM (
        SELECT project_id, timestamp, intent, {repeated_command_sql(str(REPEAT_WINDOW_S))} AS repeated
        FROM {source}
        WHERE {scope} AND event_type = 'voice_request'
          AND timestamp >= {_start(first)} - toIntervalSecond({REPEAT_WINDOW_S}) AND timestamp < {_end(last)}
        WINDOW {REPEAT_WINDOW}
    )
    WHERE intent IS NOT NULL AND timestamp >= {_start(first)}
    GROUP BY {group}
    UNION ALL
    SELECT {
        _part(
            group,
            {
                "failures": "sum(n)",
                "failed_uses": "toUInt64(length(arrayDistinct(arrayFlatten(groupArray(ids)))))",
            },
            labels="CAST(mapFromArrays(groupArray(label), groupArray(n)), 'Map(String, UInt64)') AS labels",
        )
    }
    FROM (
        SELECT project_id, use_day AS day, subject_kind AS kind, subject,
               if(place = '', failure_type, concat(place, ' · ', failure_type)) AS label,
               count() AS n, groupUniqArray(use_id) AS ids
        FROM ({failures})
        GROUP BY {group}, label
    )
    GROUP BY {group}
)
GROUP BY {group}"""
    return sql, parameters


def users_daily_sql(source: str, first: str, last: str, person: str = "person_id", scope: str = "1") -> str:
    """Rows of `USERS_COLUMNS` for the days [first, last]: who used each subject each day, as `person` (an
    expression over `source`'s columns: its person, or the raw id the caller maps to its person). Arguments
    are fixed SQL of the caller."""
    return f"""SELECT project_id, toDate(timestamp) AS day, {_KIND} AS kind, {_SUBJECT} AS subject, {person} AS person_id
FROM {source}
WHERE {scope} AND {_IS_USE} AND timestamp >= {_start(first)} AND timestamp < {_end(last)}
GROUP BY project_id, day, kind, subject, person_id"""


_ROLLED = {DAILY_TABLE: "rolled_daily", USERS_TABLE: "rolled_users"}
"""The ranked list's names (WITH) for the days of the range each rollup was computed for."""
_RAW_FROM = {DAILY_TABLE: "raw_daily_from", USERS_TABLE: "raw_users_from"}
"""The ranked list's names (WITH) for the range's first day each rollup was not computed for (NULL when it
was for every day): the rest of the range is computed from raw events from that day on."""


def _rolled_days() -> str:
    """The WITH clause naming `_ROLLED` and `_RAW_FROM`: each scalar subquery runs once per query, however many
    parts of it read the name."""
    days = """(SELECT arrayMap(i -> {date_from:Date} + i,
        range(toUInt64(greatest(dateDiff('day', {date_from:Date}, {date_to:Date}) + 1, 0)))))"""
    clauses = []
    for table in (DAILY_TABLE, USERS_TABLE):
        rolled = _ROLLED[table]
        clauses.append(
            f"""(SELECT groupUniqArray(partition) FROM rollup_runs WHERE job = '{table}'
        AND partition BETWEEN {{date_from:Date}} AND {{date_to:Date}}) AS {rolled}"""
        )
        clauses.append(
            f"if(length({rolled}) = dateDiff('day', {{date_from:Date}}, {{date_to:Date}}) + 1, NULL, "
            f"arrayFirst(d -> NOT has({rolled}, d), {days})) AS {_RAW_FROM[table]}"
        )
    return "WITH " + ",\n     ".join(clauses)


def _url(page: str, extra: str, anchor: str) -> str:
    return (
        f"concat('/{page}?project=', encodeURLComponent({{project:String}}), '&from=', toString({{date_from:Date}}), "
        f"'&to=', toString({{date_to:Date}}), {extra}'#{anchor}')"
    )


def ranked_sql() -> str:
    """The ranked list of the project's subjects over [date_from, date_to], worst first (`RANKED` rows):
    the score, every input count and share, and the evidence (the lowest-rated comment, the most frequent
    failure, the worst covering funnel step) with the dashboard links that show it."""
    raw_daily, _ = daily_sql("events FINAL", _RAW_FROM[DAILY_TABLE], "{date_to:Date}", _PROJECT)
    raw_users = users_daily_sql(
        "events FINAL", _RAW_FROM[USERS_TABLE], "{date_to:Date}", person="distinct_id", scope=_PROJECT
    )
    in_range = f"{_PROJECT} AND day BETWEEN {{date_from:Date}} AND {{date_to:Date}}"
    shown = "'&opportunity=', encodeURLComponent(concat(u.kind, ':', u.subject)), "
    return f"""{_rolled_days()}
SELECT concat(u.kind, ': ', u.subject) AS opportunity, u.kind AS kind, u.subject AS subject,
       round({_score_sql()}, 4) AS score,
       p.users AS users, u.uses AS uses, u.feedback AS feedback, u.low_rated AS low_rated,
       if(feedback = 0, NULL, low_rated / feedback) AS low_rating_share,
       u.scored AS scored, u.negative AS negative, if(scored = 0, NULL, negative / scored) AS negative_share,
       u.commands AS commands, u.repeated_commands AS repeated_commands,
       if(commands = 0, NULL, repeated_commands / commands) AS repeated_command_rate,
       u.failed_uses AS failed_uses, u.failures AS failures, failed_uses / uses AS failure_rate,
       d.reached AS funnel_reached, d.dropped AS funnel_dropped,
       if(funnel_reached = 0, NULL, funnel_dropped / funnel_reached) AS funnel_dropoff,
       u.worst_comment AS worst_comment,
       arraySort((label, n) -> (-toInt64(n), label), mapKeys(u.labels), mapValues(u.labels))[1] AS top_failure,
       if(funnel_reached = 0, '', concat(d.funnel_key, ': step ', toString(d.step), ' ', d.step_name)) AS funnel_step,
       if(feedback = 0, '', {_url("product", shown, "panel-opportunity_feedback")}) AS feedback_url,
       if(failures = 0, '', {_url("product", shown, "panel-opportunity_failures")}) AS failures_url,
       if(funnel_reached = 0, '', {_url("product", "'&funnel=', encodeURLComponent(d.funnel_key), ", "panel-funnel_steps")}) AS funnel_url
FROM (
    SELECT kind, subject, {", ".join(f"sum({name}) AS {name}" for name in DAILY_COUNTS)},
           argMinIf(worst_comment, worst_comment_key, worst_comment != '') AS worst_comment,
           sumMap(failure_labels) AS labels
    FROM (
        SELECT {", ".join(DAILY_COLUMNS)} FROM {DAILY_TABLE}
        WHERE {in_range} AND has({_ROLLED[DAILY_TABLE]}, day)
        UNION ALL
        SELECT {", ".join(DAILY_COLUMNS)} FROM ({raw_daily})
        WHERE NOT has({_ROLLED[DAILY_TABLE]}, day)
    )
    GROUP BY kind, subject
    HAVING uses > 0
) AS u
LEFT JOIN (
    SELECT kind, subject, uniqExact({person_id_sql("s", "po")}) AS users
    FROM (
        SELECT project_id, kind, subject, person_id AS distinct_id FROM {USERS_TABLE}
        WHERE {in_range} AND has({_ROLLED[USERS_TABLE]}, day)
        UNION ALL
        SELECT project_id, kind, subject, person_id AS distinct_id FROM ({raw_users})
        WHERE NOT has({_ROLLED[USERS_TABLE]}, day)
    ) AS s
    {person_join("s", "po")}
    GROUP BY kind, subject
) AS p ON p.kind = u.kind AND p.subject = u.subject
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
            WHERE {_PROJECT}
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
        WHERE {in_range}
        GROUP BY funnel_key, definition_version, step
    ) AS h ON h.funnel_key = c.funnel_key AND h.definition_version = c.version AND h.step = c.step
    LEFT JOIN (
        SELECT funnel_key, definition_version, step, sum(reached) AS reached FROM funnel_daily
        WHERE {in_range}
        GROUP BY funnel_key, definition_version, step
    ) AS n ON n.funnel_key = c.funnel_key AND n.definition_version = c.version AND n.step = c.next_step
    GROUP BY kind, subject
) AS d ON d.kind = u.kind AND d.subject = u.subject
ORDER BY score DESC, kind, subject
LIMIT {RANKED}"""


PROJECTS_WITH_SUBJECTS_SQL = f"""SELECT DISTINCT project_id FROM events
WHERE {_IS_USE}
  AND timestamp >= {_start("{date_from:Date}")} AND timestamp < {_end("{date_to:Date}")}
ORDER BY project_id"""
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
        # As daily_sql: feedback rating an interaction whose voice_request, sent on the feedback's day or
        # the day before, carried the intent.
        where = f"""{_PROJECT} AND (assumeNotNull(interaction_id), toDate(timestamp)) IN (
            SELECT assumeNotNull(interaction_id), arrayJoin([toDate(timestamp), toDate(timestamp) + 1])
            FROM events FINAL
            WHERE {_PROJECT} AND event_type = 'voice_request' AND intent = {{subject:String}}
              AND interaction_id IS NOT NULL
              AND timestamp >= {_start("{date_from:Date} - 1")} AND timestamp < {_end("{date_to:Date}")})"""
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
