"""The product page's funnel panels: every value a parameter, chart columns selected, the worst step, and
the downloaded SQL file setting every parameter the panel's SQL uses."""

import re
from datetime import date

import pytest
from pravis_dashboards import funnel_panels, panels
from pravis_schemas.funnels import FunnelDefinition, StoredFunnel

HOSTILE = "x' OR 1=1 --"
STORED = StoredFunnel(
    project_id="shop",
    version=2,
    created_at="2026-11-01T00:00:00+00:00",
    definition=FunnelDefinition(
        key="checkout",
        steps=[
            {"event_type": "voice_request", "filters": [{"property": "intent", "equals": HOSTILE}]},
            {"event_type": "feature_use", "name": "checkout"},
            {"event_type": "order_completed"},
        ],
        exclusions=[{"event_type": "error"}],
    ),
)
VIEW = panels.Params("shop", date(2026, 11, 1), date(2026, 11, 28))


@pytest.mark.parametrize("breakdown", [None, "app_version", "properties.plan", "variant:exp-1"])
def test_values_are_parameters_and_chart_columns_are_selected(breakdown: str | None) -> None:
    shown = funnel_panels.funnel_panels(STORED, breakdown, 2)
    assert tuple(p.id for p in shown) == funnel_panels.PANEL_IDS
    for panel in shown:
        used = {name for name, _ in re.findall(r"\{(\w+):([\w()]+)\}", panel.sql)}
        assert used == {*panel.parameters, "project", "date_from", "date_to"}, panel.id
        assert HOSTILE not in panel.sql and "shop" not in panel.sql
        for column in (panel.chart.x, *panel.chart.y, *([panel.chart.pivot] if panel.chart.pivot else [])):
            assert re.search(rf"\b{column}\b", panel.sql), (panel.id, column)


def test_standalone_sql_sets_array_and_text_parameters() -> None:
    panel = funnel_panels.steps_panel(STORED, None)
    text = panels.standalone_sql(panel, VIEW)
    assert (
        r"SET param_step_names = '[\\\'voice_request\\\',\\\'checkout\\\',\\\'order_completed\\\']';" in text
    )
    assert r"SET param_s0_f0 = 'x\\\' OR 1=1 --';" in text
    assert text.count("SET param_") == len(panel.parameters) + 3


def test_worst_step_is_before_the_lowest_conversion_from_previous() -> None:
    rows = [
        {"step": 1, "conversion_from_previous": 1.0},
        {"step": 2, "conversion_from_previous": 0.8},
        {"step": 3, "conversion_from_previous": 0.3},
        {"step": 4, "conversion_from_previous": 0.5},
    ]
    assert funnel_panels.worst_step(rows) == 2
    assert funnel_panels.worst_step([]) == 1
