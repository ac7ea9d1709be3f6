"""Segment membership as SQL (pure, no I/O): one builder per condition type of `pravis_schemas.surveys`, and
the one SELECT that evaluates every segment of every project in a single read of `events FINAL`.

Why one read: the refresh's cost is the FINAL scan and the person join, not the conditions, so the scan is
grouped once per person and each condition is an aggregate over that person's events (counted by person,
docs/identity.md). A segment holds when all its conditions' aggregates do; the person's every id seen in the
scanned window is written, so the gateway finds a member by the id it is given. The window is the longest
look-back of the conditions, or all of history when a condition needs it (first seen, experiment variant).

Every value reaches ClickHouse as a query parameter (`{name:Type}`); parameter names are made here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pravis_schemas.identity import person_id_sql, person_join
from pravis_schemas.surveys import (
    ActiveDays,
    Attribute,
    Condition,
    FirstSeen,
    InVariant,
    RatingAtMost,
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


def active_days_sql(condition: ActiveDays, params: Parameters) -> str:
    return (
        f"uniqExactIf(toDate(timestamp), {_since(condition.of_last_days, params)} "
        f"AND event_type NOT IN {{inactive:Array(String)}}) >= {params.add(condition.min_days, 'UInt16')}"
    )


def first_seen_sql(condition: FirstSeen, params: Parameters) -> str:
    bounds = []
    if condition.before:
        bounds.append(f"min(timestamp) < toDateTime64({params.add(condition.before, 'Date')}, 3, 'UTC')")
    if condition.after:
        bounds.append(f"min(timestamp) >= toDateTime64({params.add(condition.after, 'Date')}, 3, 'UTC')")
    return " AND ".join(bounds)


def used_feature_sql(condition: UsedFeature, params: Parameters) -> str:
    feature = params.add(condition.feature_name, "String")
    return (
        f"countIf(event_type = 'feature_use' AND feature_name = {feature} "
        f"AND {_since(condition.within_days, params)}) > 0"
    )


def experiment_variant_sql(condition: InVariant, params: Parameters) -> str:
    return (
        "countIf(event_type = 'experiment_exposure' AND in_experiment "
        f"AND experiment_key = {params.add(condition.experiment_key, 'String')} "
        f"AND variant = {params.add(condition.variant, 'String')}) > 0"
    )


def attribute_sql(condition: Attribute, params: Parameters) -> str:
    column = {"app_version": "app_version", "locale": "locale", "device": "device"}[condition.attribute]
    return (
        f"ifNull(argMaxIf({column}, timestamp, {column} IS NOT NULL), '') "
        f"IN {params.add(condition.values, 'Array(String)')}"
    )


def rating_at_most_sql(condition: RatingAtMost, params: Parameters) -> str:
    return (
        f"countIf(event_type = 'feedback' AND rating <= {params.add(condition.max_rating, 'UInt8')} "
        f"AND {_since(condition.within_days, params)}) > 0"
    )


BUILDERS: dict[type, Callable[[Any, Parameters], str]] = {
    ActiveDays: active_days_sql,
    FirstSeen: first_seen_sql,
    UsedFeature: used_feature_sql,
    InVariant: experiment_variant_sql,
    Attribute: attribute_sql,
    RatingAtMost: rating_at_most_sql,
}
"""The SQL builder of each condition type: an aggregate over one person's events that is true for members."""


def lookback_days(conditions: Sequence[Condition]) -> int | None:
    """Days of events the conditions read before the refresh; None when one needs all of history."""
    days = []
    for condition in conditions:
        if isinstance(condition, ActiveDays):
            days.append(condition.of_last_days)
        elif isinstance(condition, UsedFeature | RatingAtMost):
            days.append(condition.within_days)
        elif isinstance(condition, FirstSeen | InVariant):
            return None
        # An attribute is the latest value seen in the window; the other conditions' window suffices.
    return max(days, default=None) if days else None


COLUMNS = (
    "project_id",
    "event_id",
    "event_type",
    "timestamp",
    "distinct_id",
    "feature_name",
    "experiment_key",
    "variant",
    "in_experiment",
    "app_version",
    "locale",
    "device",
    "rating",
)


def members_select(segments: Sequence[StoredSegment], as_of: datetime) -> Query:
    """(project_id, segment_key, distinct_id) of every member id of every segment, as of `as_of`."""
    if not segments:
        raise ValueError("no segments to refresh")
    params = Parameters()
    conditions = [c for s in segments for c in s.definition.conditions]
    days = lookback_days(conditions)
    window = "" if days is None else f"AND e.{_since(days, params)}"
    tests = []
    for segment in segments:
        holds = [f"project_id = {params.add(segment.project_id, 'String')}"]
        holds += [f"({BUILDERS[type(c)](c, params)})" for c in segment.definition.conditions]
        tests.append(f"({params.add(segment.definition.key, 'String')}, {' AND '.join(holds)})")
    columns = ", ".join(f"e.{column} AS {column}" for column in COLUMNS)
    sql = f"""
SELECT project_id, hit.1 AS segment_key, arrayJoin(ids) AS distinct_id
FROM (
    SELECT project_id, groupUniqArray(distinct_id) AS ids,
           arrayFilter(t -> t.2, [{", ".join(tests)}]) AS hits
    FROM (
        SELECT {columns}, {person_id_sql("e", "po")} AS person_id
        FROM events AS e FINAL
        {person_join("e", "po")}
        WHERE e.project_id IN {{projects:Array(String)}} AND e.distinct_id != '' {window}
    )
    GROUP BY project_id, person_id
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
