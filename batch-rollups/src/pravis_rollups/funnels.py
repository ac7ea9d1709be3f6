"""Funnels read from the warehouse: saved definitions, and a funnel's figures over a date range.

`step_counts` is the one call other features build on (the dashboards' "funnel drop-off" opportunity, a
"reached a funnel step" survey segment): per step of a saved funnel over [first, last], every figure of
`pravis_schemas.funnel_sql.funnel_sql`, with zeros for a range where no unit entered (never an error).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from clickhouse_connect.driver.client import Client
from pravis_schemas.funnel_sql import funnel_sql
from pravis_schemas.funnels import LATEST_FUNNELS_SQL, FunnelDefinition, StoredFunnel, stored_funnel


def stored_funnels(client: Client, project_id: str | None = None) -> list[StoredFunnel]:
    """The newest version of every funnel (of one project, or of all)."""
    rows = client.query(LATEST_FUNNELS_SQL, parameters={"project": project_id}).result_rows
    return sorted((stored_funnel(row) for row in rows), key=lambda s: (s.project_id, s.definition.key))


def _rows(client: Client, query: tuple[str, dict[str, Any]], first: date, last: date) -> list[dict[str, Any]]:
    sql, params = query
    result = client.query(sql, parameters={**params, "date_from": first, "date_to": last})
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def empty_steps(definition: FunnelDefinition, period: date, breakdown: str = "") -> list[dict[str, Any]]:
    """The rows of a funnel no unit entered: every count 0, rates and times NULL."""
    return [
        {
            "period": period,
            "breakdown": breakdown,
            "step": k,
            "reached": 0,
            "entered": 0,
            "conversion_from_start": None,
            "conversion_from_previous": None,
            "dropped": 0,
            "median_from_previous_s": None,
            "p90_from_previous_s": None,
            "median_from_start_s": None,
            "p90_from_start_s": None,
        }
        for k in range(1, len(definition.steps) + 1)
    ]


def step_counts(
    client: Client, stored: StoredFunnel, first: date, last: date, breakdown: str | None = None
) -> list[dict[str, Any]]:
    """Per breakdown value and step (1-based), the funnel over units entering in [first, last] (dict rows with
    the columns of `funnel_sql`, `step_name` added); zeros when nobody entered."""
    rows = _rows(client, funnel_sql(stored.definition, stored.project_id, breakdown), first, last)
    rows = rows or empty_steps(stored.definition, first)
    for row in rows:
        row["step_name"] = stored.definition.steps[row["step"] - 1].label
    return rows
