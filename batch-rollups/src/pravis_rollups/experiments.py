"""Experiment results: the per-variant aggregate SQL and the statistics on its output (pure: no I/O).

Only aggregates leave the warehouse. `results_sql` counts, per variant, the users exposed in the experiment
(`experiment_exposure` with `in_experiment`, deduplicated per user; users who saw more than one variant are
excluded and counted apart) and per goal the users who converted after their first exposure, or the sum and
sum of squares of each user's total of a numeric property (0 for users without matching events). A user is a
person (docs/identity.md): exposures and goal events are joined through `person_overrides`, so a visitor
exposed anonymously who converts after logging in is one converting unit; a person exposed to two variants
under two ids (assignment hashes the id the SDK used) is a multi-variant user. An order counts once per
`order_id` (its first event), as in revenue_daily, so an order sent twice neither doubles a user's revenue nor
counts before exposure by its copy; and a money goal (revenue per user) converts each order into the reporting
currency at the `fx_rates` rate of its day, as revenue_daily does, so a two-currency experiment compares like
with like (orders of a currency without a rate count apart, as `unconverted`). `result_rows`
turns those into rates, means, variances, relative lift vs the control with a confidence interval (delta
method, normal approximation) and p-value (two-proportion z test, pooled; Welch's t test for numeric goals),
and the sample-ratio-mismatch chi-square p-value of the user counts against the configured weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pravis_schemas.experiments import ExperimentDefinition, Goal, StoredExperiment
from pravis_schemas.funnel_sql import walks_sql
from pravis_schemas.funnels import FunnelDefinition
from pravis_schemas.identity import person_id_sql, person_join
from scipy import stats

from pravis_rollups.rollups import FX_RATES_SQL

CONFIDENCE = 0.95
SRM_P_THRESHOLD = 0.001
"""Flag a sample-ratio mismatch below this p-value (the usual SRM threshold; GrowthBook's default too)."""


def _goal_match(index: int, goal: Goal, params: dict[str, Any]) -> str:
    params[f"g{index}_type"] = goal.event_type
    condition = f"event_type = {{g{index}_type:String}}"
    if goal.property is not None:
        params[f"g{index}_eq"] = goal.equals_text
        condition += f" AND {_value_expr(index, 'f', goal.property, params)} = {{g{index}_eq:String}}"
    return condition


def _value_expr(index: int, tag: str, prop: str, params: dict[str, Any]) -> str:
    name = f"g{index}_{tag}"
    if prop.startswith("properties."):
        params[name] = prop.removeprefix("properties.")
        return f"toString(getSubcolumn(properties, {{{name}:String}}))"
    params[name] = prop
    return f"toString({{{name}:Identifier}})"


FUNNEL_GOAL_DAYS = (date(1970, 1, 1), date(2100, 1, 1))
"""The entry range of a funnel goal: any day, since each unit enters at or after its own exposure."""


def _funnel_goal(
    index: int, goal: Goal, funnels: Mapping[str, FunnelDefinition], project_id: str, params: dict[str, Any]
) -> str:
    """CTE `funnel_goal_{index}`: the units that completed the goal's funnel (counted by person, whatever the
    funnel counts), entering at their first step-1 event at or after their first exposure."""
    if goal.funnel not in funnels:
        raise ValueError(
            f"goal {goal.name!r} names funnel {goal.funnel!r}, which is not saved in the project"
        )
    funnel = funnels[goal.funnel].model_copy(update={"count_by": "person"})
    since = "SELECT unit, toUnixTimestamp64Milli(exposed_at) AS since FROM units WHERE variant_count = 1"
    walks, walk_params = walks_sql(funnel, project_id, prefix=f"fg{index}_", entered_after=since)
    params.update(walk_params)
    return f"funnel_goal_{index} AS (SELECT unit FROM ({walks}) WHERE ix[{len(funnel.steps)}] > 0)"


def _converted_goal_events(inner: str, goals: Sequence[Goal]) -> str:
    """`inner`'s goal events with each money goal's amount `a{i}` converted into the reporting currency as
    `v{i}` (NULL without a rate on or before the event's day)."""
    columns = ["g.unit AS unit", "g.timestamp AS timestamp"]
    for i, goal in enumerate(goals):
        if goal.funnel is not None:
            continue
        columns.append(f"g.m{i} AS m{i}")
        if goal.is_money:
            columns.append(
                f"if(g.currency = {{reporting_currency:String}}, g.a{i}, g.a{i} * toFloat64(fx.rate)) AS v{i}"
            )
        elif goal.value_property is not None:
            columns.append(f"g.v{i} AS v{i}")
    return f"""SELECT {", ".join(columns)}
    FROM ({inner}) AS g
    ASOF LEFT JOIN {FX_RATES_SQL} AS fx ON g.currency = fx.currency AND g.day >= fx.day"""


def results_sql(
    definition: ExperimentDefinition,
    project_id: str,
    funnels: Mapping[str, FunnelDefinition] | None = None,
    *,
    reporting_currency: str,
) -> tuple[str, dict[str, Any]]:
    """One row per variant with users: (variant, users, multi_variant_users, then per goal i:
    `conversions_{i}`, or `sum_{i}`/`squares_{i}`: sum and sum of squares of the per-user totals, and for a
    money goal `unconverted_{i}`: its orders without a rate into `reporting_currency`). `funnels` (the
    project's saved funnels by key) must hold every funnel a goal names."""
    params: dict[str, Any] = {
        "project": project_id,
        "experiment": definition.key,
        "variants": [v.key for v in definition.variants],
    }
    units = f"""units AS (
    SELECT {person_id_sql("e", "po")} AS unit, min(e.timestamp) AS exposed_at,
           uniqExact(e.variant) AS variant_count, any(e.variant) AS assigned
    FROM events AS e FINAL
    {person_join("e", "po")}
    WHERE e.project_id = {{project:String}} AND e.event_type = 'experiment_exposure'
      AND e.experiment_key = {{experiment:String}} AND e.in_experiment
      AND e.variant IN {{variants:Array(String)}} AND e.distinct_id != ''
    GROUP BY unit
)"""
    multi = "(SELECT countIf(variant_count > 1) FROM units) AS multi_variant_users"
    if not definition.goals:
        sql = (
            f"WITH {units}\nSELECT assigned AS variant, count() AS users, {multi}\n"
            "FROM units WHERE variant_count = 1 GROUP BY assigned ORDER BY assigned"
        )
        return sql, params

    params["goal_types"] = sorted({g.event_type for g in definition.goals if g.event_type is not None})
    event_columns, unit_columns, totals, funnel_goals = ["e.timestamp AS timestamp"], [], [], []
    for i, goal in enumerate(definition.goals):
        if goal.funnel is not None:
            funnel_goals.append(_funnel_goal(i, goal, funnels or {}, project_id, params))
            unit_columns.append(f"any(u.unit IN (SELECT unit FROM funnel_goal_{i})) AS c{i}")
            totals.append(f"sum(c{i}) AS conversions_{i}")
            continue
        event_columns.append(f"{_goal_match(i, goal, params)} AS m{i}")
        after = f"g.m{i} AND g.timestamp >= u.exposed_at"
        if goal.value_property is None:
            unit_columns.append(f"countIf({after}) > 0 AS c{i}")
            totals.append(f"sum(c{i}) AS conversions_{i}")
        else:
            value = f"toFloat64OrNull({_value_expr(i, 'v', goal.value_property, params)})"
            event_columns.append(f"{value} AS {'a' if goal.is_money else 'v'}{i}")
            unit_columns.append(f"coalesce(sumIf(g.v{i}, {after}), 0) AS s{i}")
            totals.append(f"sum(s{i}) AS sum_{i}, sum(s{i} * s{i}) AS squares_{i}")
            if goal.is_money:
                unit_columns.append(f"countIf({after} AND g.v{i} IS NULL) AS n{i}")
                totals.append(f"sum(n{i}) AS unconverted_{i}")
    if funnel_goals:
        params.update(date_from=FUNNEL_GOAL_DAYS[0], date_to=FUNNEL_GOAL_DAYS[1])
    money = any(goal.is_money for goal in definition.goals)
    if money:
        params["reporting_currency"] = reporting_currency
        event_columns += ["coalesce(e.currency, '') AS currency", "toDate(e.timestamp) AS day"]
    events = f"""SELECT {person_id_sql("e", "po")} AS unit, {", ".join(event_columns)}
    FROM events AS e FINAL
    {person_join("e", "po")}
    WHERE e.project_id = {{project:String}} AND e.event_type IN {{goal_types:Array(String)}}
      AND unit IN (SELECT unit FROM units WHERE variant_count = 1)
    ORDER BY e.timestamp, e.event_id
    LIMIT 1 BY e.event_type, ifNull(e.order_id, toString(e.event_id))"""
    if money:
        events = _converted_goal_events(events, definition.goals)
    ctes = ",\n".join([units, *funnel_goals])
    sql = f"""WITH {ctes},
goal_events AS (
    {events}
),
per_unit AS (
    SELECT u.unit AS unit, u.assigned AS assigned, {", ".join(unit_columns)}
    FROM units AS u LEFT JOIN goal_events AS g ON g.unit = u.unit
    WHERE u.variant_count = 1
    GROUP BY u.unit, u.assigned
)
SELECT assigned AS variant, count() AS users, {multi}, {", ".join(totals)}
FROM per_unit GROUP BY assigned ORDER BY assigned"""
    return sql, params


@dataclass(frozen=True)
class Comparison:
    lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


NO_COMPARISON = Comparison(None, None, None, None)


def _relative_lift(
    m_c: float, v_c: float, n_c: int, m_t: float, v_t: float, n_t: int, confidence: float
) -> tuple[float | None, float | None, float | None]:
    """Relative lift m_t/m_c - 1 with a delta-method normal confidence interval (v = per-user variances)."""
    if m_c == 0 or n_c == 0 or n_t == 0:
        return None, None, None
    lift = m_t / m_c - 1
    se = math.sqrt(v_t / (n_t * m_c**2) + m_t**2 * v_c / (n_c * m_c**4))
    z = stats.norm.ppf(0.5 + confidence / 2)
    return lift, lift - z * se, lift + z * se


def two_proportion_test(
    conv_c: int, n_c: int, conv_t: int, n_t: int, confidence: float = CONFIDENCE
) -> Comparison:
    """Treatment vs control conversion: relative lift with CI, pooled two-proportion z test p-value."""
    if n_c == 0 or n_t == 0:
        return NO_COMPARISON
    p_c, p_t = conv_c / n_c, conv_t / n_t
    pooled = (conv_c + conv_t) / (n_c + n_t)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_c + 1 / n_t))
    p_value = float(2 * stats.norm.sf(abs(p_t - p_c) / se)) if se > 0 else None
    lift, low, high = _relative_lift(p_c, p_c * (1 - p_c), n_c, p_t, p_t * (1 - p_t), n_t, confidence)
    return Comparison(lift, low, high, p_value)


def welch_test(
    mean_c: float,
    var_c: float,
    n_c: int,
    mean_t: float,
    var_t: float,
    n_t: int,
    confidence: float = CONFIDENCE,
) -> Comparison:
    """Treatment vs control mean: relative lift with CI, Welch's unequal-variance t test p-value."""
    if n_c < 2 or n_t < 2:
        return NO_COMPARISON
    p_value = None
    if var_c > 0 or var_t > 0:
        result = stats.ttest_ind_from_stats(
            mean_t, math.sqrt(var_t), n_t, mean_c, math.sqrt(var_c), n_c, equal_var=False
        )
        p_value = float(result.pvalue)
    lift, low, high = _relative_lift(mean_c, var_c, n_c, mean_t, var_t, n_t, confidence)
    return Comparison(lift, low, high, p_value)


def srm_p_value(users: Sequence[int], weights: Sequence[float]) -> float | None:
    """Chi-square goodness of fit of the users per variant against the configured weights (None if untestable:
    no users, or fewer than two variants with weight)."""
    pairs = [(u, w) for u, w in zip(users, weights, strict=True) if w > 0]
    total = sum(u for u, _ in pairs)
    if total == 0 or len(pairs) < 2:
        return None
    weight_sum = sum(w for _, w in pairs)
    expected = [total * w / weight_sum for _, w in pairs]
    return float(stats.chisquare([u for u, _ in pairs], f_exp=expected).pvalue)


def sample_variance(total: float, squares: float, n: int) -> float | None:
    if n < 2:
        return None
    return max((squares - total * total / n) / (n - 1), 0.0)


def result_rows(
    stored: StoredExperiment,
    aggregates: Sequence[dict[str, Any]],
    computed_at: datetime,
    reporting_currency: str,
    confidence: float = CONFIDENCE,
) -> list[dict[str, Any]]:
    """`experiment_results` rows (variant x goal) from the rows of `results_sql` (as dicts by column name),
    money goals in `reporting_currency` (the currency `results_sql` converted them into)."""
    definition = stored.definition
    by_variant = {row["variant"]: row for row in aggregates}
    multi = int(aggregates[0]["multi_variant_users"]) if aggregates else 0
    users = [int(by_variant.get(v.key, {}).get("users", 0)) for v in definition.variants]
    srm = srm_p_value(users, definition.weights)
    base = {
        "project_id": stored.project_id,
        "experiment_key": definition.key,
        "definition_version": stored.version,
        "multi_variant_users": multi,
        "confidence_level": confidence,
        "srm_p_value": srm,
        "srm_flag": srm is not None and srm < SRM_P_THRESHOLD,
        "computed_at": computed_at,
    }
    rows = []
    for index, variant in enumerate(definition.variants):
        row = {
            **base,
            "variant": variant.key,
            "variation_id": index,
            "is_control": index == 0,
            "weight": variant.weight,
            "users": users[index],
        }
        if not definition.goals:
            rows.append({**row, "goal": "", "goal_kind": "exposure", **_empty_goal(), **_no_money()})
        for g, goal in enumerate(definition.goals):
            money = _no_money()
            if goal.is_money:
                unconverted = by_variant.get(variant.key, {}).get(f"unconverted_{g}", 0)
                money = {"currency": reporting_currency, "unconverted": int(unconverted)}
            rows.append(
                {
                    **row,
                    "goal": goal.name,
                    "goal_kind": goal.kind,
                    **_goal_fields(g, goal, index, users, by_variant, definition, confidence),
                    **money,
                }
            )
    return rows


GOAL_STAT_COLUMNS = (
    "conversions",
    "conversion_rate",
    "mean",
    "variance",
    "lift",
    "lift_ci_low",
    "lift_ci_high",
    "p_value",
)
"""The per-goal statistics of an `experiment_results` row; NULL on the exposure-only row."""


def _empty_goal() -> dict[str, Any]:
    return dict.fromkeys(GOAL_STAT_COLUMNS)


MONEY_COLUMNS = ("currency", "unconverted")
"""A money goal's currency (the reporting one its amounts were converted into) and its orders left out for
want of a rate; NULL on the other rows."""


def _no_money() -> dict[str, Any]:
    return dict.fromkeys(MONEY_COLUMNS)


def _goal_fields(
    g: int,
    goal: Goal,
    index: int,
    users: list[int],
    by_variant: dict[str, dict[str, Any]],
    definition: ExperimentDefinition,
    confidence: float,
) -> dict[str, Any]:
    fields = _empty_goal()
    control = by_variant.get(definition.control, {})
    mine = by_variant.get(definition.variants[index].key, {})
    n_c, n_t = users[0], users[index]
    if goal.kind == "conversion":
        conv_c, conv_t = int(control.get(f"conversions_{g}", 0)), int(mine.get(f"conversions_{g}", 0))
        fields["conversions"] = conv_t
        fields["conversion_rate"] = conv_t / n_t if n_t else None
        comparison = two_proportion_test(conv_c, n_c, conv_t, n_t, confidence) if index else NO_COMPARISON
    else:
        sum_t, sq_t = float(mine.get(f"sum_{g}", 0.0)), float(mine.get(f"squares_{g}", 0.0))
        sum_c, sq_c = float(control.get(f"sum_{g}", 0.0)), float(control.get(f"squares_{g}", 0.0))
        fields["mean"] = sum_t / n_t if n_t else None
        fields["variance"] = sample_variance(sum_t, sq_t, n_t)
        var_c = sample_variance(sum_c, sq_c, n_c)
        comparison = NO_COMPARISON
        if index and var_c is not None and fields["variance"] is not None:
            comparison = welch_test(
                sum_c / n_c, var_c, n_c, fields["mean"], fields["variance"], n_t, confidence
            )
    fields.update(
        lift=comparison.lift,
        lift_ci_low=comparison.ci_low,
        lift_ci_high=comparison.ci_high,
        p_value=comparison.p_value,
    )
    return fields
