"""The panel catalogue and its pure helpers: parameterized SQL only, pivots, CSV, SQL downloads, live view."""

import re
from datetime import date, datetime

from pravis_dashboards import panels
from pravis_dashboards.live import LiveSnapshot
from pravis_dashboards.live_view import live_view
from pravis_schemas.live_api import LiveAlerts, LiveSummary, LiveTimeseries

from .live_api_bodies import ALERTS_BODY, SUMMARY_BODY, TIMESERIES_BODY

VIEW = panels.Params("shop 'b'", date(2024, 3, 1), date(2024, 3, 31))


def test_every_page_but_live_has_panels_and_ids_are_unique() -> None:
    assert len(panels.BY_ID) == len(panels.PANELS)
    for page in panels.PAGES:
        assert bool(panels.page_panels(page)) == (page != "live")


def test_sql_is_parameterized_never_formatted() -> None:
    for panel in panels.PANELS:
        placeholders = set(re.findall(r"\{(\w+):(\w+)\}", panel.sql))
        assert ("project", "String") in placeholders, panel.id
        assert panel.uses_dates == ({("date_from", "Date"), ("date_to", "Date")} <= placeholders), panel.id
        assert "'default'" not in panel.sql and "%s" not in panel.sql, panel.id


def test_chart_columns_are_selected_by_the_sql() -> None:
    for panel in panels.PANELS:
        pivot = [panel.chart.pivot] if panel.chart.pivot else []
        for column in (panel.chart.x, *panel.chart.y, *pivot, *panel.chart.secondary):
            assert re.search(rf"\b{column}\b", panel.sql), (panel.id, column)


def test_chart_data_pivots_long_rows_into_series_with_gaps() -> None:
    chart = panels.Chart("line", "day", ("rate",), pivot="route")
    rows = [
        (date(2024, 3, 1), "GET /a", 0.5),
        (date(2024, 3, 1), "GET /b", 0.1),
        (date(2024, 3, 2), "GET /a", 1.0),
    ]
    data = panels.chart_data(chart, ["day", "route", "rate"], rows)
    assert data.labels == ["2024-03-01", "2024-03-02"]
    assert data.series == [{"name": "GET /a", "data": [0.5, 1.0]}, {"name": "GET /b", "data": [0.1, None]}]
    assert data.points == 3


def test_chart_data_wide_rows_and_nan_becomes_null() -> None:
    chart = panels.Chart("line", "day", ("dau", "rate"))
    data = panels.chart_data(chart, ["day", "dau", "rate"], [(date(2024, 3, 1), 3, float("nan"))])
    assert data.series == [{"name": "dau", "data": [3]}, {"name": "rate", "data": [None]}]
    assert data.points == 1


def test_standalone_sql_sets_the_parameters_and_keeps_the_placeholders() -> None:
    text = panels.standalone_sql(panels.BY_ID["active_users"], VIEW)
    assert text.splitlines()[3:6] == [
        "SET param_project = 'shop \\\\\\'b\\\\\\'';",
        "SET param_date_from = '2024-03-01';",
        "SET param_date_to = '2024-03-31';",
    ]
    assert text.endswith(panels.BY_ID["active_users"].sql + ";\n")
    assert "shop" not in "".join(line for line in text.splitlines() if line.startswith("--"))
    assert "param_date_from" not in panels.standalone_sql(panels.BY_ID["experiments"], VIEW)


def test_no_project_name_adds_a_line_to_the_sql_file() -> None:
    hostile = panels.Params(
        "x\nDROP TABLE pravis.events;\n--\r\x00\u2028'", date(2024, 3, 1), date(2024, 3, 2)
    )
    plain = panels.Params("x", date(2024, 3, 1), date(2024, 3, 2))
    for panel in panels.PANELS:
        lines = panels.standalone_sql(panel, hostile).splitlines()
        assert len(lines) == len(panels.standalone_sql(panel, plain).splitlines()), panel.id
        assert not any(line.startswith("DROP") for line in lines), panel.id


def test_clickhouse_escape_leaves_one_printable_line() -> None:
    assert panels.clickhouse_escape("a'b\\c\n\r\t\x00\x01\x7f\b\fé") == (
        "a\\'b\\\\c\\n\\r\\t\\0\\x01\\x7F\\b\\fé"
    )
    assert panels.clickhouse_string("it's") == "'it\\'s'"
    assert panels.parameter_literal("a\\b") == "'a\\\\\\\\b'"


def test_csv_has_a_header_iso_dates_and_empty_nulls() -> None:
    text = panels.to_csv(["day", "rate", "at"], [(date(2024, 3, 1), None, datetime(2024, 3, 1, 12, 0))])
    assert text == "day,rate,at\n2024-03-01,,2024-03-01T12:00:00\n"


def test_default_range_ends_at_the_latest_rolled_up_day() -> None:
    assert panels.default_range(date(2024, 3, 24), date(2026, 1, 1), 7) == (
        date(2024, 3, 18),
        date(2024, 3, 24),
    )
    assert panels.default_range(date(1970, 1, 1), date(2026, 1, 10), 10) == (
        date(2026, 1, 1),
        date(2026, 1, 10),
    )


def test_live_view_headlines_and_series() -> None:
    snapshot = LiveSnapshot(
        summary=LiveSummary.model_validate_json(SUMMARY_BODY),
        timeseries=LiveTimeseries.model_validate_json(TIMESERIES_BODY),
        alerts=LiveAlerts.model_validate_json(ALERTS_BODY),
    )
    view = live_view(snapshot)
    assert (view["active_users"], view["events_per_minute"], view["error_rate"], view["open_alerts"]) == (
        4,
        10.0,
        0.1,
        1,
    )
    assert view["minutes"] == ["09:59", "10:00"]
    assert view["missing_partitions"] == []
    partial = LiveSnapshot(
        summary=snapshot.summary.model_copy(update={"partitions": [1]}),
        timeseries=snapshot.timeseries,
        alerts=snapshot.alerts,
    )
    assert live_view(partial)["missing_partitions"] == [0]  # a stream worker did not answer
    assert view["series"][0] == {"name": "events", "data": [20, 30]}
    assert view["alerts"] == [
        {
            "metric": "error_rate",
            "severity": "critical",
            "labels": {"endpoint": "/pay"},
            "started_at": "2026-01-01T09:58:00Z",
        }
    ]


def test_grafana_dashboards_are_generated_from_the_panels_and_committed() -> None:
    from pathlib import Path

    from pravis_dashboards import grafana

    committed = Path(__file__).parents[2] / "deploy" / "grafana"
    for name, text in grafana.files().items():
        assert (committed / name).read_text() == text, (
            f"regenerate: python -m pravis_dashboards.grafana ({name})"
        )
    for panel in panels.PANELS:
        assert not re.search(r"(?<!\$)\{\w+:\w+\}", grafana.grafana_sql(panel.sql, panel.parameters)), (
            panel.id
        )


def test_survey_panels_read_the_picked_survey_as_a_parameter() -> None:
    per_survey = [panel for panel in panels.PANELS if panel.per_survey]
    assert {panel.id for panel in per_survey} >= {"survey_nps", "survey_ratings", "survey_text_answers"}
    for panel in panels.PANELS:
        assert ("{survey:String}" in panel.sql) == panel.per_survey, panel.id
    picked = panels.with_survey(panels.BY_ID["survey_text_answers"], "ux' --")
    text = panels.standalone_sql(picked, VIEW)
    assert "SET param_survey = 'ux\\\\\\' --';" in text and "SET param_limit = '20';" in text
    assert picked.sql == panels.BY_ID["survey_text_answers"].sql
