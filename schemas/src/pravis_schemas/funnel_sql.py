# ruff: noqa: E501 - SQL text stays on the lines it reads best on
"""Funnel, drop-off and path queries over `events FINAL` (pure: SQL text and parameters, no I/O).

Shared by the rollups (`funnel_daily`, funnel goals of experiments) and the dashboards' funnel panels, so the
SQL a panel shows is the SQL the rollup ran. Semantics (docs/funnels.md):

- A unit (a person through the identity graph, or a session) enters at its first step-1 event in the range
  (per day for `per_day`); its later steps are searched from there, within `window_s` of that entry, which may
  run past the range's last day. Events are ordered by (timestamp, event_id), so a step and the next one may
  share a timestamp but never an event.
- Dedup: `FINAL`, so a redelivered event_id counts once, like every other reader of `events`.
- Each unit's events are gathered into one time-sorted array and walked with `arrayFirstIndex`: ClickHouse's
  `windowFunnel` gives only the furthest level of the best attempt, not which events reached each step, and
  the step times, the next events after a drop-off and the exit points all need those events.

Every value reaches ClickHouse as a parameter; the only text composed here is fixed SQL, the step numbers
and parameter names made from them.
"""

from __future__ import annotations

from typing import Any

from pravis_schemas.events import AI_EVENT_TYPES
from pravis_schemas.funnels import AI_BREAKDOWN, VARIANT_PREFIX, FunnelDefinition, Matcher
from pravis_schemas.identity import person_id_sql, person_join

EVENT_LABEL_SQL = "concat(e.event_type, if(ifNull(e.feature_name, '') = '', '', concat(':', e.feature_name)))"
"""How paths, next events and exit points name an event: its type, and the feature of a feature_use."""
PATH_SEPARATOR = " → "
"""Joins a path's events in `paths_sql`'s `path` column (the dashboards split it again to draw the flow)."""
NO_EVENT = "(none)"
NO_VALUE = "(none)"
NOT_EXPOSED = "(not exposed)"
MULTIPLE_VARIANTS = "(multiple)"
AI_USED, AI_NOT_USED = "used", "not used"
_AI_MARK = "1"
"""An event's breakdown field under AI_BREAKDOWN: this for an AI request, '' otherwise."""
# The tuple of one event in a unit's array: (ts ms, event_id, step bits, exclusion bits, session, label, breakdown)
TS, ID, STEPS, EXCLUDES, SESSION, LABEL, BREAKDOWN = (f".{i}" for i in range(1, 8))


def _value(column: str, params: dict[str, Any], name: str) -> str:
    """The text of an `events` column or a `properties.<path>` (NULL when absent), as a parameter."""
    if column.startswith("properties."):
        params[name] = column.removeprefix("properties.")
        value = f"getSubcolumn(e.properties, {{{name}:String}})"
        return f"if(isNull({value}), NULL, toString({value}))"
    params[name] = column
    return f"toString(e.{{{name}:Identifier}})"


def _matches(matcher: Matcher, params: dict[str, Any], name: str) -> str:
    params[f"{name}_type"] = matcher.event_type
    condition = f"e.event_type = {{{name}_type:String}}"
    for j, flt in enumerate(matcher.filters):
        params[f"{name}_f{j}"] = flt.equals_text
        value = _value(flt.property, params, f"{name}_p{j}")
        condition += f" AND ifNull({value} = {{{name}_f{j}:String}}, 0)"
    return condition


def _bits(conditions: list[str]) -> str:
    if not conditions:
        return "toUInt32(0)"
    return " + ".join(f"if({c}, {1 << i}, 0)" for i, c in enumerate(conditions))


def _unit_events(
    definition: FunnelDefinition,
    project_id: str,
    breakdown: str | None,
    params: dict[str, Any],
    p: str,
    all_events: bool,
    with_context: bool,
) -> str:
    """SELECT of the events the walk reads, one row each: unit, the tuple fields and `person`. Without
    `with_context` the session and label are left empty: only the drop-off reads them, and building them for
    every event is a measurable share of a funnel's cost (docs/scaling.md)."""
    params[f"{p}project"] = project_id
    params[f"{p}window_s"] = definition.window_s
    steps = [_matches(s, params, f"{p}s{i}") for i, s in enumerate(definition.steps)]
    excludes = [_matches(x, params, f"{p}x{i}") for i, x in enumerate(definition.exclusions)]
    person = person_id_sql("e", "po")
    unit = person if definition.count_by == "person" else "ifNull(e.session_id, '')"
    if breakdown is None or breakdown.startswith(VARIANT_PREFIX):
        value = "''"
    elif breakdown == AI_BREAKDOWN:
        params[f"{p}ai_types"] = list(AI_EVENT_TYPES)
        value = f"if(e.event_type IN {{{p}ai_types:Array(String)}}, '{_AI_MARK}', '')"
    else:
        value = f"ifNull({_value(breakdown, params, f'{p}breakdown')}, '{NO_VALUE}')"
    types = ""
    if not all_events:
        read = {m.event_type for m in [*definition.steps, *definition.exclusions]}
        if breakdown == AI_BREAKDOWN:
            read.update(AI_EVENT_TYPES)
        params[f"{p}types"] = sorted(read)
        types = f"\n      AND e.event_type IN {{{p}types:Array(String)}}"
    sql = f"""SELECT {unit} AS unit, {person} AS person, toUnixTimestamp64Milli(e.timestamp) AS ts,
             toString(e.event_id) AS id, toUInt32({_bits(steps)}) AS steps, toUInt32({_bits(excludes)}) AS excludes,
             {"ifNull(e.session_id, '')" if with_context else "''"} AS session,
             {EVENT_LABEL_SQL if with_context else "''"} AS label, {value} AS breakdown
      FROM events AS e FINAL
      {person_join("e", "po")}
      WHERE e.project_id = {{{p}project:String}} AND e.distinct_id != ''
        AND e.timestamp >= toDateTime64({{date_from:Date}}, 3, 'UTC')
        AND e.timestamp < toDateTime64({{date_to:Date}} + 1, 3, 'UTC') + toIntervalSecond({{{p}window_s:UInt32}}){types}"""
    if definition.count_by == "session":
        sql += "\n        AND ifNull(e.session_id, '') != ''"
    if breakdown is not None and breakdown.startswith(VARIANT_PREFIX):
        params[f"{p}experiment"] = breakdown.removeprefix(VARIANT_PREFIX)
        sql = f"""SELECT m.* REPLACE (if(ifNull(v.variant, '') = '', '{NOT_EXPOSED}', v.variant) AS breakdown)
      FROM ({sql}) AS m
      LEFT JOIN (
          SELECT {person_id_sql("e", "po")} AS person,
                 if(uniqExact(e.variant) > 1, '{MULTIPLE_VARIANTS}', any(e.variant)) AS variant
          FROM events AS e FINAL
          {person_join("e", "po")}
          WHERE e.project_id = {{{p}project:String}} AND e.event_type = 'experiment_exposure'
            AND e.experiment_key = {{{p}experiment:String}} AND e.in_experiment AND e.distinct_id != ''
          GROUP BY person
      ) AS v ON v.person = m.person"""
    return sql


def _step_indexes(definition: FunnelDefinition) -> list[str]:
    """Expressions of i1..in: the 1-based position in `ev` of the event reaching each step, 0 if not reached."""
    n = len(definition.steps)
    reachable = "i > {prev} AND x{ts} <= deadline AND bitTest(x{steps}, {bit})"
    if definition.order == "any_order":
        firsts = [
            f"arrayFirstIndex((x, i) -> {reachable.format(prev='i1', ts=TS, steps=STEPS, bit=s)}, ev, arrayEnumerate(ev))"
            for s in range(1, n)
        ]
        done = f"arraySort(arrayFilter(i -> i > 0, [{', '.join(firsts)}]))"
        return ["i1", *[f"if(i1 = 0, 0, {done}[{k}])" for k in range(1, n)]]
    indexes = ["i1"]
    for s in range(1, n):
        prev = f"i{s}"
        if definition.order == "strict":
            nxt = f"ev[{prev} + 1]"
            expr = f"if({prev} > 0 AND {prev} < length(ev) AND {nxt}{TS} <= deadline AND bitTest({nxt}{STEPS}, {s}), {prev} + 1, 0)"
        else:
            found = reachable.format(prev=prev, ts=TS, steps=STEPS, bit=s)
            expr = f"if({prev} = 0, 0, arrayFirstIndex((x, i) -> {found}, ev, arrayEnumerate(ev)))"
        indexes.append(expr)
    return indexes


def walks_sql(
    definition: FunnelDefinition,
    project_id: str,
    breakdown: str | None = None,
    *,
    per_day: bool = False,
    all_events: bool = False,
    prefix: str = "",
    entered_after: str | None = None,
    with_context: bool = False,
) -> tuple[str, dict[str, Any]]:
    """One row per unit (and entry day with `per_day`) that entered the funnel in [date_from, date_to] and is
    not excluded: `period` (the entry's day, or date_from), `unit`, `breakdown` (the entry event's value; for
    AI_BREAKDOWN, AI_USED when an AI request is at or after the entry event and by the deadline), `ix`
    (per step, the 1-based position in `ev` of the event that reached it, 0 if not), `deadline` (ms) and `ev`
    (the unit's events sorted: tuples of ts ms, event_id, step bits, exclusion bits, session, label,
    breakdown). `all_events` keeps every event of the unit in `ev` (strict order needs it anyway);
    `with_context` fills each event's session and label (empty otherwise). `entered_after` (fixed SQL of the
    caller: a relation of `unit` and `since`, ms) keeps only those units and lets each enter at its first
    step-1 event at or after its `since` (an experiment's exposure)."""
    p = prefix
    params: dict[str, Any] = {}
    everything = all_events or definition.order == "strict"
    events = _unit_events(definition, project_id, breakdown, params, p, everything, with_context)
    in_range = f"bitTest(x{STEPS}, 0) AND x{TS} < toUnixTimestamp64Milli(toDateTime64({{date_to:Date}} + 1, 3, 'UTC'))"
    grouped = f"""SELECT unit, arraySort(x -> (x{TS}, x{ID}), groupArray((ts, id, steps, excludes, session, label, breakdown))) AS ev
        FROM ({events})
        GROUP BY unit"""
    if entered_after is not None:
        in_range += f" AND x{TS} >= since"
        grouped = f"SELECT g.unit AS unit, g.ev AS ev, a.since AS since FROM ({grouped}) AS g INNER JOIN ({entered_after}) AS a ON a.unit = g.unit"
    entry_day = f"toDate(fromUnixTimestamp64Milli(x{TS}, 'UTC'))"
    if per_day:
        periods = f"arrayDistinct(arrayMap(x -> {entry_day}, arrayFilter(x -> {in_range}, ev)))"
        entry = f"arrayFirstIndex(x -> {in_range} AND {entry_day} = period, ev)"
    else:
        periods = "[{date_from:Date}]"
        entry = f"arrayFirstIndex(x -> {in_range}, ev)"
    indexes = _step_indexes(definition)
    excluded = []
    for k, exclusion in enumerate(definition.exclusions):
        start, end = definition.exclusion_span(exclusion)
        excluded.append(
            f"(ix[{start}] > 0 AND arrayExists((x, i) -> bitTest(x{EXCLUDES}, {k}) AND i > ix[{start}] "
            f"AND if(ix[{end}] > 0, i < ix[{end}], x{TS} <= deadline), ev, arrayEnumerate(ev)))"
        )
    not_excluded = f"\nWHERE NOT ({' OR '.join(excluded)})" if excluded else ""
    names = ", ".join(f"{expr} AS i{s + 1}" for s, expr in enumerate(indexes) if s > 0)
    value = f"ev[i1]{BREAKDOWN}"
    if breakdown == AI_BREAKDOWN:
        used = f"arrayExists((x, i) -> i >= i1 AND x{TS} <= deadline AND x{BREAKDOWN} = '{_AI_MARK}', ev, arrayEnumerate(ev))"
        value = f"if({used}, '{AI_USED}', '{AI_NOT_USED}')"
    sql = f"""SELECT period, unit, {value} AS breakdown, ix, deadline, ev FROM (
    SELECT unit, ev, period, {entry} AS i1, ev[i1]{TS} + {{{p}window_s:UInt32}} * 1000 AS deadline,
           {names}, [{", ".join(f"i{s + 1}" for s in range(len(indexes)))}] AS ix
    FROM ({grouped})
    ARRAY JOIN {periods} AS period
    WHERE i1 > 0
){not_excluded}"""
    return sql, params


def funnel_sql(
    definition: FunnelDefinition,
    project_id: str,
    breakdown: str | None = None,
    *,
    per_day: bool = False,
    prefix: str = "",
) -> tuple[str, dict[str, Any]]:
    """Per period (date_from, or each entry day with `per_day`), breakdown value and step: `entered`,
    `reached`, `conversion_from_start`, `conversion_from_previous`, `dropped` (from the previous step), and the
    median and p90 seconds from the previous step and from step 1 (`quantileExact`: the value at position
    floor(level * n) of the sorted times of the units that reached the step). No rows when no unit entered."""
    walks, params = walks_sql(definition, project_id, breakdown, per_day=per_day, prefix=prefix)
    step = "ev[ix[step]]"
    since_previous = f"({step}{TS} - ev[ix[step - 1]]{TS}) / 1000"
    since_start = f"({step}{TS} - ev[ix[1]]{TS}) / 1000"
    sql = f"""SELECT period, breakdown, step, reached,
       first_value(reached) OVER w AS entered,
       reached / nullIf(entered, 0) AS conversion_from_start,
       reached / nullIf(lagInFrame(reached, 1, reached) OVER w, 0) AS conversion_from_previous,
       lagInFrame(reached, 1, reached) OVER w - reached AS dropped,
       median_from_previous_s, p90_from_previous_s, median_from_start_s, p90_from_start_s
FROM (
    SELECT period, breakdown, step, countIf(ix[step] > 0) AS reached,
           if(step = 1 OR reached = 0, NULL, quantileExactIf(0.5)({since_previous}, ix[step] > 0 AND step > 1)) AS median_from_previous_s,
           if(step = 1 OR reached = 0, NULL, quantileExactIf(0.9)({since_previous}, ix[step] > 0 AND step > 1)) AS p90_from_previous_s,
           if(step = 1 OR reached = 0, NULL, quantileExactIf(0.5)({since_start}, ix[step] > 0 AND step > 1)) AS median_from_start_s,
           if(step = 1 OR reached = 0, NULL, quantileExactIf(0.9)({since_start}, ix[step] > 0 AND step > 1)) AS p90_from_start_s
    FROM ({walks})
    ARRAY JOIN arrayEnumerate(ix) AS step
    GROUP BY period, breakdown, step
)
WINDOW w AS (PARTITION BY period, breakdown ORDER BY step ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
ORDER BY period, breakdown, step"""
    return sql, params


def dropoff_sql(
    definition: FunnelDefinition, project_id: str, step: int, limit: int = 10
) -> tuple[str, dict[str, Any]]:
    """For the units that reached `step` (1-based) but not the next one: `kind` 'next' (the event right after
    the step's event within the window, `(none)` if there was none) or 'exit' (the last event of the session
    the step happened in, as far as the range plus the window reaches), `event` (its label), `units`; the
    `limit` most frequent of each kind."""
    if not 1 <= step < len(definition.steps):
        raise ValueError(f"drop-off after step {step}: the funnel has steps 1..{len(definition.steps)}")
    walks, params = walks_sql(definition, project_id, all_events=True, with_context=True)
    params.update(dropoff_step=step, dropoff_limit=limit)
    at = "ix[{dropoff_step:UInt8}]"
    sql = f"""SELECT kind, event, count() AS units FROM (
    SELECT [
        ('next', if({at} < length(ev) AND ev[{at} + 1]{TS} <= deadline, ev[{at} + 1]{LABEL}, '{NO_EVENT}')),
        ('exit', ev[arrayLastIndex(x -> x{SESSION} = ev[{at}]{SESSION}, ev)]{LABEL})
    ] AS outcomes
    FROM ({walks})
    WHERE {at} > 0 AND ix[{{dropoff_step:UInt8}} + 1] = 0
)
ARRAY JOIN outcomes.1 AS kind, outcomes.2 AS event
GROUP BY kind, event
ORDER BY kind, units DESC, event
LIMIT {{dropoff_limit:UInt16}} BY kind"""
    return sql, params


def paths_sql(
    project_id: str, start_event: str, depth: int = 3, window_s: int = 1800, limit: int = 50
) -> tuple[str, dict[str, Any]]:
    """The `limit` most frequent paths of persons from their first `start_event` in [date_from, date_to]: that
    event and the next `depth` events within `window_s` of it, consecutive repeats collapsed into one, joined
    with ' → ' (`path`, `steps`, `units`)."""
    if not 1 <= depth <= 4:
        raise ValueError(f"path depth {depth}: 1 to 4 events after the start")
    params: dict[str, Any] = {
        "project": project_id,
        "start_event": start_event,
        "depth": depth,
        "window_s": window_s,
        "limit": limit,
    }
    sql = f"""SELECT arrayStringConcat(labels, '{PATH_SEPARATOR}') AS path, length(labels) AS steps, count() AS units FROM (
    SELECT arraySlice(arrayCompact(arrayMap(x -> x.4,
               arrayFilter((x, i) -> i >= start AND x.1 <= ev[start].1 + {{window_s:UInt32}} * 1000, ev, arrayEnumerate(ev)))),
               1, {{depth:UInt8}} + 1) AS labels
    FROM (
        SELECT unit, ev,
               arrayFirstIndex(x -> x.3 = {{start_event:String}}
                   AND x.1 < toUnixTimestamp64Milli(toDateTime64({{date_to:Date}} + 1, 3, 'UTC')), ev) AS start
        FROM (
            SELECT {person_id_sql("e", "po")} AS unit,
                   arraySort(x -> (x.1, x.2), groupArray((toUnixTimestamp64Milli(e.timestamp), toString(e.event_id),
                             e.event_type, {EVENT_LABEL_SQL}))) AS ev
            FROM events AS e FINAL
            {person_join("e", "po")}
            WHERE e.project_id = {{project:String}} AND e.distinct_id != ''
              AND e.timestamp >= toDateTime64({{date_from:Date}}, 3, 'UTC')
              AND e.timestamp < toDateTime64({{date_to:Date}} + 1, 3, 'UTC') + toIntervalSecond({{window_s:UInt32}})
            GROUP BY unit
        )
    )
    WHERE start > 0
)
GROUP BY labels
ORDER BY units DESC, path
LIMIT {{limit:UInt16}}"""
    return sql, params
