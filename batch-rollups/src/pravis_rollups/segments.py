"""Segment membership as SQL (pure, no I/O): one builder per condition type of `pravis_schemas.surveys`, and
the one SELECT that evaluates every segment of every project in a single read of `events`.

Why one read, in two steps: the events are grouped once per id, each condition contributing an aggregate of
that id's events; only those rows (one per id, not per event) are joined to `person_overrides` and grouped per
person, where each condition becomes a predicate over its ids' aggregates (counted by person,
docs/identity.md). A segment holds when all its conditions' aggregates do; the person's every id seen in the
scanned window is written, so the gateway finds a member by the id it is given. The window is the longest
look-back of the conditions, or all of history when a condition needs it (first seen, experiment variant).

Why not FINAL: every per-id aggregate gives the same value when a row comes twice (whether some matching event
exists, the first time, the set of active days, the value at the latest time), and the copies of an event that
ReplacingMergeTree has not collapsed yet are the same event delivered again. Merging the parts by key at read
time was about half of the refresh's time (docs/scaling.md); a condition that counted events would need it.

"Reached a funnel step" is not an aggregate of one id's events but a walk over the person's ordered events:
it is the saved funnel's own walk (`pravis_schemas.funnel_sql.walks_sql`, the SQL `funnel_daily` and the
funnel panels run), evaluated once as a set of persons that the person-level step tests membership in.

Every value reaches ClickHouse as a query parameter (`{name:Type}`); parameter names are made here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pravis_schemas.funnel_sql import walks_sql
from pravis_schemas.funnels import StoredFunnel
from pravis_schemas.identity import person_id_sql, person_join
from pravis_schemas.surveys import (
    ActiveDays,
    Attribute,
    Condition,
    FirstSeen,
    InVariant,
    RatingAtMost,
    ReachedFunnelStep,
    StoredSegment,
    UsedFeature,
)

from pravis_rollups.rollups import INACTIVE_EVENT_TYPES, Query


@dataclass
class Parameters:
    """Collects the parameters of one query under names unique within it."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any, type_name: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{type_name}}}"


def _since(days: int, params: Parameters) -> str:
    return f"timestamp >= {{as_of:DateTime64(3, 'UTC')}} - toIntervalDay({params.add(days, 'UInt16')})"


Parts = tuple[str, str]
"""(aggregate over one id's events, predicate over those aggregates of all a person's ids, `{c}` naming the
column that holds them). The aggregate must not change when a row comes twice: the read is not FINAL."""


def active_days_sql(condition: ActiveDays, params: Parameters) -> Parts:
    since = _since(condition.of_last_days, params)
    days = f"groupUniqArrayIf(toDate(timestamp), {since} AND event_type NOT IN {{inactive:Array(String)}})"
    return days, f"length(groupUniqArrayArray({{c}})) >= {params.add(condition.min_days, 'UInt16')}"


def first_seen_sql(condition: FirstSeen, params: Parameters) -> Parts:
    bounds = []
    if condition.before:
        bounds.append(f"min({{c}}) < toDateTime64({params.add(condition.before, 'Date')}, 3, 'UTC')")
    if condition.after:
        bounds.append(f"min({{c}}) >= toDateTime64({params.add(condition.after, 'Date')}, 3, 'UTC')")
    return "min(timestamp)", " AND ".join(bounds)


def used_feature_sql(condition: UsedFeature, params: Parameters) -> Parts:
    feature = params.add(condition.feature_name, "String")
    count = (
        f"countIf(event_type = 'feature_use' AND feature_name = {feature} "
        f"AND {_since(condition.within_days, params)})"
    )
    return count, "sum({c}) > 0"


def experiment_variant_sql(condition: InVariant, params: Parameters) -> Parts:
    count = (
        "countIf(event_type = 'experiment_exposure' AND in_experiment "
        f"AND experiment_key = {params.add(condition.experiment_key, 'String')} "
        f"AND variant = {params.add(condition.variant, 'String')})"
    )
    return count, "sum({c}) > 0"


def attribute_sql(condition: Attribute, params: Parameters) -> Parts:
    column = {"app_version": "app_version", "locale": "locale", "device": "device"}[condition.attribute]
    # The id's latest value as one number: its time in ms, doubled, plus 1 when the value is one of the
    # condition's (tested once per distinct value of the LowCardinality column); the person's latest is the
    # largest over its ids and its low bit is the answer. A tie in time goes to the matching value. One
    # numeric max instead of argMax over the strings and a max of the time: the costliest aggregate, halved.
    latest = (
        f"maxIf(toUnixTimestamp64Milli(timestamp) * 2 + ({column} IN "
        f"{params.add(condition.values, 'Array(String)')}), {column} IS NOT NULL)"
    )
    return latest, "bitAnd(max({c}), 1) = 1"


def rating_at_most_sql(condition: RatingAtMost, params: Parameters) -> Parts:
    count = (
        f"countIf(event_type = 'feedback' AND rating <= {params.add(condition.max_rating, 'UInt8')} "
        f"AND {_since(condition.within_days, params)})"
    )
    return count, "sum({c}) > 0"


def funnel_step_sql(
    condition: ReachedFunnelStep,
    funnel: StoredFunnel | None,
    person: str,
    as_of: datetime,
    params: Parameters,
) -> str:
    """Predicate on the person expression `person`: it entered `funnel` in the `within_days` days up to the
    day of `as_of` and reached the condition's step. False when the funnel is gone or has fewer steps (the
    gateway refuses such a segment when it is saved; a funnel can change after)."""
    if funnel is None or condition.step > len(funnel.definition.steps):
        return "0"
    by_person = funnel.definition.model_copy(update={"count_by": "person"})
    prefix = f"f{len(params.values)}_"
    walks, walk_params = walks_sql(by_person, funnel.project_id, prefix=prefix)
    # walks_sql names its range date_from/date_to for callers that share one range; here each condition
    # has its own, so they become this query's own parameters.
    first = params.add((as_of - timedelta(days=condition.within_days)).date(), "Date")
    last = params.add(as_of.date(), "Date")
    walks = walks.replace("{date_from:Date}", first).replace("{date_to:Date}", last)
    params.values.update(walk_params)
    return f"{person} IN (SELECT unit FROM ({walks}) WHERE ix[{params.add(condition.step, 'UInt8')}] > 0)"


BUILDERS: dict[type, Callable[[Any, Parameters], Parts]] = {
    ActiveDays: active_days_sql,
    FirstSeen: first_seen_sql,
    UsedFeature: used_feature_sql,
    InVariant: experiment_variant_sql,
    Attribute: attribute_sql,
    RatingAtMost: rating_at_most_sql,
}
"""The SQL builder of each condition type but `funnel_step` (`funnel_step_sql`): true for the persons who
meet it, in two steps (`Parts`)."""


def lookback_days(conditions: Sequence[Condition]) -> int | None:
    """Days of events the conditions read before the refresh; None when one needs all of history."""
    days = []
    for condition in conditions:
        if isinstance(condition, ActiveDays):
            days.append(condition.of_last_days)
        elif isinstance(condition, UsedFeature | RatingAtMost):
            days.append(condition.within_days)
        elif isinstance(condition, ReachedFunnelStep):
            # The funnel's range starts at the day of as_of - within_days: a day more lists the ids of it.
            days.append(condition.within_days + 1)
        elif isinstance(condition, FirstSeen | InVariant):
            return None
        # An attribute is the latest value seen in the window; the other conditions' window suffices.
    return max(days, default=None) if days else None


def members_select(
    segments: Sequence[StoredSegment],
    as_of: datetime,
    funnels: Mapping[tuple[str, str], StoredFunnel] | None = None,
) -> Query:
    """(project_id, segment_key, distinct_id) of every member id of every segment, as of `as_of`; `funnels`
    (by project and key) are the saved funnels the `funnel_step` conditions name."""
    if not segments:
        raise ValueError("no segments to refresh")
    params = Parameters()
    conditions = [c for s in segments for c in s.definition.conditions]
    days = lookback_days(conditions)
    window = "" if days is None else f"AND {_since(days, params)}"
    per_id, tests = [], []
    person = person_id_sql("i", "po")
    for segment in segments:
        holds = [f"project_id = {params.add(segment.project_id, 'String')}"]
        for condition in segment.definition.conditions:
            if isinstance(condition, ReachedFunnelStep):
                funnel = (funnels or {}).get((segment.project_id, condition.funnel_key))
                holds.append(f"({funnel_step_sql(condition, funnel, person, as_of, params)})")
                continue
            column = f"c{len(per_id)}"
            aggregate, predicate = BUILDERS[type(condition)](condition, params)
            per_id.append(f"{aggregate} AS {column}")
            holds.append(f"({predicate.replace('{c}', column)})")
        tests.append(f"({params.add(segment.definition.key, 'String')}, {' AND '.join(holds)})")
    sql = f"""
SELECT project_id, hit.1 AS segment_key, arrayJoin(ids) AS distinct_id
FROM (
    SELECT i.project_id AS project_id, groupArray(i.distinct_id) AS ids,
           arrayFilter(t -> t.2, [{", ".join(tests)}]) AS hits
    FROM (
        SELECT {", ".join(["project_id", "distinct_id", *per_id])}
        FROM events
        WHERE project_id IN {{projects:Array(String)}} AND distinct_id != '' {window}
        GROUP BY project_id, distinct_id
    ) AS i
    {person_join("i", "po")}
    GROUP BY project_id, {person}
    HAVING length(hits) > 0
)
ARRAY JOIN hits AS hit"""
    parameters = {
        **params.values,
        "as_of": as_of,
        "inactive": list(INACTIVE_EVENT_TYPES),
        "projects": sorted({s.project_id for s in segments}),
    }
    return Query(sql, parameters)
