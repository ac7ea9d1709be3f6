"""Grafana dashboards (grafana-clickhouse-datasource) for the same panels, generated from `panels.PANELS`
(pure: no I/O). `python -m pravis_dashboards.grafana DIR` writes one JSON file per page; deploy/grafana/ holds
the committed output and a test keeps it in sync."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from pravis_dashboards import panels

DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "${datasource}"}
# The page's parameters become Grafana's: the project variable and the dashboard time range.
REPLACEMENTS = {
    "{project:String}": "'${project:sqlstring}'",
    "{survey:String}": "'${survey:sqlstring}'",
    "{date_from:Date}": "toDate($__fromTime)",
    "{date_to:Date}": "toDate($__toTime)",
}
SURVEYS_SQL = panels.SURVEYS_SQL.replace("{project:String}", REPLACEMENTS["{project:String}"])


SETTING_PARAMETERS = frozenset(panels.Saturation().as_parameters())
"""Parameters an operator sets (the saturation thresholds): dashboard text boxes holding their defaults. A
panel's other parameters are constants of the code, written as literals."""


def grafana_sql(sql: str, parameters: dict[str, Any] | None = None) -> str:
    """`sql` with the page's placeholders as Grafana variables, settings as text boxes read as numbers, and a
    panel's constants (never user input) as literals."""
    for placeholder, replacement in REPLACEMENTS.items():
        sql = sql.replace(placeholder, replacement)
    for name, value in (parameters or {}).items():
        for placeholder, kind in set(re.findall(r"(\{" + name + r":(\w+)\})", sql)):
            if name in SETTING_PARAMETERS:
                replacement = f"to{kind}('${{{name}:sqlstring}}')"
            else:
                replacement = str(value) if isinstance(value, int) else panels.clickhouse_string(str(value))
            sql = sql.replace(placeholder, replacement)
    return sql


def text_box(name: str, value: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "textbox",
        "label": name,
        "query": str(value),
        "current": {"text": str(value), "value": str(value)},
    }


def grafana_panel(panel: panels.Panel, index: int) -> dict[str, Any]:
    kind = panel.chart.kind
    timeseries = kind == "line"
    target = {
        "refId": "A",
        "datasource": DATASOURCE,
        "editorType": "sql",
        "rawSql": grafana_sql(panel.sql, panel.parameters),
        "queryType": "timeseries" if timeseries else "table",
        "format": 0 if timeseries else 1,
    }
    unit = "percentunit" if panel.chart.percent else "bytes" if panel.chart.bytes else None
    body: dict[str, Any] = {
        "id": index + 1,
        "title": panel.title,
        "description": panel.description,
        "type": {"line": "timeseries", "bar": "barchart", "heatmap": "table", "table": "table"}[kind],
        "datasource": DATASOURCE,
        "gridPos": {"h": 9, "w": 12, "x": 12 * (index % 2), "y": 9 * (index // 2)},
        "targets": [target],
        "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
        "options": {},
    }
    if panel.chart.pivot:
        body["transformations"] = [{"id": "prepareTimeSeries", "options": {"format": "multi"}}]
    if kind == "bar":
        body["options"] = {"xField": panel.chart.x, "stacking": "normal" if panel.chart.stacked else "none"}
    if panel.chart.secondary:
        body["fieldConfig"]["overrides"] = [
            {
                "matcher": {"id": "byName", "options": column},
                "properties": [
                    {"id": "custom.drawStyle", "value": "bars"},
                    {"id": "custom.axisPlacement", "value": "right"},
                    {"id": "unit", "value": "short"},
                ],
            }
            for column in panel.chart.secondary
        ]
    if kind == "heatmap":
        body["fieldConfig"]["defaults"]["custom"] = {"cellOptions": {"type": "color-background"}}
        body["fieldConfig"]["defaults"]["color"] = {"mode": "continuous-BlPu"}
    return body


def dashboard(page: str) -> dict[str, Any]:
    return {
        "uid": f"pravis-{page}",
        "title": f"Pravis · {panels.PAGES[page]}",
        "tags": ["pravis"],
        "timezone": "utc",
        "schemaVersion": 39,
        "time": {"from": "now-30d", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "grafana-clickhouse-datasource",
                    "label": "ClickHouse",
                },
                {
                    "name": "project",
                    "type": "query",
                    "label": "Project",
                    "datasource": DATASOURCE,
                    "query": panels.PROJECTS_SQL,
                    "refresh": 1,
                    "current": {"text": "default", "value": "default"},
                },
                *(
                    text_box(name, value)
                    for panel in panels.page_panels(page)
                    for name, value in panel.parameters.items()
                    if name in SETTING_PARAMETERS
                ),
                *(
                    [
                        {
                            "name": "survey",
                            "type": "query",
                            "label": "Survey",
                            "datasource": DATASOURCE,
                            "query": SURVEYS_SQL,
                            "refresh": 1,
                        }
                    ]
                    if any(panel.per_survey for panel in panels.page_panels(page))
                    else []
                ),
            ]
        },
        "panels": [grafana_panel(panel, i) for i, panel in enumerate(panels.page_panels(page))],
    }


def files() -> dict[str, str]:
    """File name -> JSON text of every dashboard (the Live page needs the stream tier, not ClickHouse)."""
    return {
        f"pravis-{page}.json": json.dumps(dashboard(page), indent=2, ensure_ascii=False) + "\n"
        for page in panels.PAGES
        if panels.page_panels(page)
    }


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/grafana")
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files().items():
        (out / name).write_text(text)
        print(out / name)


if __name__ == "__main__":
    main()
