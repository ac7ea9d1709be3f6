"""The product page's funnel panels for one saved funnel and breakdown (pure: SQL and charts, no I/O).

They are built per request, since their SQL depends on the funnel chosen: the steps with the drop-off between
them, conversion over time (from the `funnel_daily` rollup, or from events per entry day when broken down),
the time between steps, the next events and exit points after the worst step, and the most frequent paths from
the first step's event. The SQL is `pravis_schemas.funnel_sql`'s, the same the rollup runs; every value of
the funnel is a parameter of the panel, shown and downloaded like any panel's.
"""

from __future__ import annotations

from typing import Any

from pravis_schemas.funnel_sql import PATH_SEPARATOR, dropoff_sql, funnel_sql, paths_sql
from pravis_schemas.funnels import StoredFunnel

from pravis_dashboards.panels import Chart, Panel

PAGE = "product"
PANEL_IDS = ("funnel_steps", "funnel_trend", "funnel_time", "funnel_exits", "funnel_paths")
PATHS_SHOWN = 20
DAILY_SQL = """SELECT day,
       sumIf(reached, step = {last_step:UInt8}) / nullIf(sumIf(entered, step = 1), 0) AS conversion
FROM funnel_daily
WHERE project_id = {project:String} AND funnel_key = {funnel_key:String}
  AND day BETWEEN {date_from:Date} AND {date_to:Date}
GROUP BY day ORDER BY day"""


def _own(parameters: dict[str, Any]) -> dict[str, Any]:
    """The funnel's parameters besides the view's own (project and dates come from the page)."""
    return {k: v for k, v in parameters.items() if k not in ("project", "date_from", "date_to")}


def _labelled(sql: str) -> str:
    """Rows of `sql` (columns `step`, ...) with the step's name: `step` becomes e.g. '2. feature_use'."""
    return f"""SELECT concat(toString(step), '. ', {{step_names:Array(String)}}[step]) AS step_label, *
FROM ({sql})"""


def steps_panel(stored: StoredFunnel, breakdown: str | None) -> Panel:
    definition = stored.definition
    sql, params = funnel_sql(definition, stored.project_id, breakdown)
    names = [s.label for s in definition.steps]
    chart = (
        Chart("bar", "step_label", ("reached", "dropped"), stacked=True)
        if breakdown is None
        else Chart("bar", "step_label", ("conversion_from_start",), pivot="breakdown", percent=True)
    )
    unit = "persons" if definition.count_by == "person" else "sessions"
    return Panel(
        "funnel_steps",
        PAGE,
        f"Funnel: {definition.name or definition.key}",
        f"{unit.capitalize()} entering in the range (first step-1 event) and reaching each step within "
        f"{definition.window_s} s ({definition.order}); stacked on top: the drop-off from the previous step."
        + (f" By {breakdown}: conversion from step 1." if breakdown else ""),
        _labelled(sql),
        chart,
        parameters={**_own(params), "step_names": names},
    )


def trend_panel(stored: StoredFunnel, breakdown: str | None) -> Panel:
    definition = stored.definition
    last = len(definition.steps)
    if breakdown is None:
        return Panel(
            "funnel_trend",
            PAGE,
            "Funnel conversion over time",
            "Per entry day, the share of the units entering that day who reached the last step "
            "(funnel_daily).",
            DAILY_SQL,
            Chart("line", "day", ("conversion",), percent=True),
            parameters={"funnel_key": definition.key, "last_step": last},
        )
    sql, params = funnel_sql(definition, stored.project_id, breakdown, per_day=True)
    return Panel(
        "funnel_trend",
        PAGE,
        f"Funnel conversion over time, by {breakdown}",
        "Per entry day, the share of the units entering that day who reached the last step.",
        f"SELECT period AS day, breakdown, conversion_from_start AS conversion\nFROM ({sql})\n"
        "WHERE step = {last_step:UInt8}\nORDER BY day, breakdown",
        Chart("line", "day", ("conversion",), pivot="breakdown", percent=True),
        parameters={**_own(params), "last_step": last},
    )


def time_panel(stored: StoredFunnel) -> Panel:
    """The steps panel's query without a breakdown, drawn as times: the page runs that query once for both
    panels and the worst step (step 1, the entry, has no time)."""
    steps = steps_panel(stored, None)
    return Panel(
        "funnel_time",
        PAGE,
        "Time to convert",
        "Median and p90 seconds from the previous step, and from step 1, of the units reaching each step.",
        steps.sql,
        Chart("bar", "step_label", ("median_from_previous_s", "p90_from_previous_s", "median_from_start_s")),
        parameters=steps.parameters,
    )


def worst_step(rows: list[dict[str, Any]]) -> int:
    """The step after which the largest share of units drops out (1-based; 1 when nobody entered)."""
    candidates = [
        (row["conversion_from_previous"], row["step"] - 1)
        for row in rows
        if row["step"] > 1 and row["conversion_from_previous"] is not None
    ]
    return min(candidates)[1] if candidates else 1


def exits_panel(stored: StoredFunnel, step: int) -> Panel:
    definition = stored.definition
    sql, params = dropoff_sql(definition, stored.project_id, step)
    return Panel(
        "funnel_exits",
        PAGE,
        f"Where they went instead, after step {step} ({definition.steps[step - 1].label})",
        "Units that reached the step with the largest drop-off but not the next: their next event within the "
        "window ('next') and the last event of that session ('exit').",
        sql,
        Chart("table", "event", ("units",), pivot="kind"),
        parameters=_own(params),
    )


def paths_panel(stored: StoredFunnel) -> Panel:
    definition = stored.definition
    start = definition.steps[0].event_type
    sql, params = paths_sql(
        stored.project_id, start, depth=3, window_s=definition.window_s, limit=PATHS_SHOWN
    )
    return Panel(
        "funnel_paths",
        PAGE,
        f"Top paths from {start}",
        f"Persons' first {start} in the range and their next 3 events within the window, repeats collapsed; "
        "the flow chart draws the table's paths, one column per step, widths proportional to persons.",
        sql,
        Chart("table", "path", ("units",), path_separator=PATH_SEPARATOR),
        parameters=_own(params),
    )


def funnel_panels(stored: StoredFunnel, breakdown: str | None, worst: int) -> list[Panel]:
    return [
        steps_panel(stored, breakdown),
        trend_panel(stored, breakdown),
        time_panel(stored),
        exits_panel(stored, worst),
        paths_panel(stored),
    ]
