"""The dashboards in a real headless Chromium: every page renders without console errors, each chart draws the
data points its query returned for the synthetic dataset, and the Live page changes, without a reload, after
events are posted through the gateway and counted by the real stream worker. Both run with their credentials
on, as deployed: the browser gets the dashboards' basic-auth challenge and answers it (as a person would at
the prompt), and the dashboards send the live API's token. Screenshots go to artifacts/screenshots/."""

import base64
import json
import secrets
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from pravis_dashboards import funnel_panels, opportunity_panels, panels
from pravis_dashboards.clickhouse import Warehouse
from pravis_gateway.keys import KeyStore
from pravis_local.demo import DEMO_CONFIG, DEMO_SURVEY, seed
from pravis_local.synthetic import generate, parse_iso
from pravis_rollups.jobs import run_rollups
from pravis_schemas.funnels import StoredFunnel

from tests import funnel_model
from tests.browser import CHROMIUM, Page, chromium_page
from tests.helpers import now_iso, page_view
from tests.support import services
from tests.support.demo_funnel import DEMO_FUNNEL, model_events, save_demo_funnel
from tests.support.persons import persons

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
SCREENSHOTS = Path(__file__).parent.parent / "artifacts" / "screenshots"
LIVE_PROJECT = "dash-live"
USER, PASSWORD, LIVE_TOKEN = "analyst", secrets.token_urlsafe(12), secrets.token_urlsafe(24)
AUTH = httpx.BasicAuth(USER, PASSWORD)
# Installed before any page script: collects uncaught errors, failed resource loads and console.error/warn.
ERROR_TRAP = """
window.__errors = [];
window.addEventListener('error', (e) => window.__errors.push(
    e.message || ('failed to load ' + ((e.target && (e.target.src || e.target.href)) || '?'))), true);
window.addEventListener('unhandledrejection', (e) => window.__errors.push('rejection: ' + e.reason));
for (const level of ['error', 'warn']) {
    const original = console[level];
    console[level] = (...args) => { window.__errors.push(level + ': ' + args.join(' ')); original(...args); };
}
"""


@pytest.fixture(scope="module")
def warehouse_url(clickhouse_server: str) -> str:
    url = f"{clickhouse_server}/pravis_dash_browser_{secrets.token_hex(4)}"
    seed(url)
    return url


@pytest.fixture(scope="module")
def stream_url(worker_env: dict[str, str], log_dir: Path) -> Iterator[str]:
    port = services.free_port()
    env = {
        **worker_env,
        "PRAVIS_STREAM_APP_ID": f"pravis-stream-dash-{secrets.token_hex(4)}",
        "PRAVIS_STREAM_WEB_PORT": str(port),
        "PRAVIS_STREAM_PERSIST_INTERVAL_S": "0.5",
        "PRAVIS_STREAM_SESSION_TIMEOUT_S": "6",
        "PRAVIS_STREAM_REBALANCE_TIMEOUT_S": "3",
        "PRAVIS_STREAM_LIVE_AUTH": f"token:{LIVE_TOKEN}",
    }
    process = services.Process("stream-dash", [sys.executable, "-m", "pravis_stream"], log_dir, env).start()
    try:
        services.wait_for_http(f"http://127.0.0.1:{port}/healthz", process.popen, timeout_s=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture(scope="module")
def dashboards_url(warehouse_url: str, stream_url: str, log_dir: Path) -> Iterator[str]:
    port = services.free_port()
    env = {
        "PRAVIS_CLICKHOUSE_URL": warehouse_url,
        "PRAVIS_STREAM_URL": stream_url,
        "PRAVIS_DASHBOARDS_LIVE_POLL_S": "1",
        "PRAVIS_STREAM_LIVE_AUTH": f"token:{LIVE_TOKEN}",
        "PRAVIS_DASHBOARDS_AUTH": f"basic:{USER}:{PASSWORD}",
    }
    process = services.Process(
        "dashboards", [sys.executable, "-m", "pravis_dashboards", "--port", str(port)], log_dir, env
    ).start()
    try:
        services.wait_for_http(f"http://127.0.0.1:{port}/healthz", process.popen)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture
def page(log_dir: Path) -> Iterator[Page]:
    with chromium_page(log_dir) as p:
        p.call(
            "Emulation.setDeviceMetricsOverride", width=1440, height=1000, deviceScaleFactor=1, mobile=False
        )
        p.call("Page.addScriptToEvaluateOnNewDocument", source=ERROR_TRAP)
        p.answer_auth_challenges(USER, PASSWORD)
        yield p


def screenshot(page: Page, name: str) -> Path:
    height = page.evaluate("document.documentElement.scrollHeight")
    page.call(
        "Emulation.setDeviceMetricsOverride", width=1440, height=height, deviceScaleFactor=1, mobile=False
    )
    time.sleep(0.3)  # one resize frame for the responsive charts before the capture
    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"dashboards-{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def panel_screenshot(page: Page, panel_id: str) -> Path:
    """One panel's card, cut from the page (after `screenshot` sized the viewport to the whole page)."""
    box = page.evaluate(
        f"(() => {{ const r = document.getElementById('panel-{panel_id}').getBoundingClientRect();"
        " return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height}; })()"
    )
    shot = page.call("Page.captureScreenshot", format="png", clip={**box, "scale": 1})
    path = SCREENSHOTS / f"dashboards-panel-{panel_id}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def errors(page: Page) -> list[str]:
    return page.evaluate("window.__errors") + [m for m in page.console if "error" in m.lower()]


def independent_values(view: panels.Params) -> dict[str, dict[str, Any]]:
    """Some panels' values computed in Python from the synthetic dataset the warehouse was seeded with, by
    the metric's definition: neither the panels' SQL, the rollups nor the server's chart code take part."""
    dataset = generate(DEMO_CONFIG)
    person = persons(dataset.all_events())  # users are persons (docs/identity.md), over the whole graph
    events = [
        e
        for e in dataset.all_events()
        if e["project_id"] == view.project
        and view.date_from <= parse_iso(e["timestamp"]).date() <= view.date_to
    ]
    days = [
        (view.date_from + timedelta(n)).isoformat() for n in range((view.date_to - view.date_from).days + 1)
    ]

    def day(e: dict) -> str:
        return parse_iso(e["timestamp"]).date().isoformat()

    active: dict[str, set[str]] = {d: set() for d in days}
    for e in events:
        if e["event_type"] not in ("api_request", "identify", "alias") and person(e):
            active[day(e)].add(person(e))
    uses = [e for e in events if e["event_type"] == "feature_use"]
    features = sorted({e["feature_name"] for e in uses})
    feature_users = {f: {person(e) for e in uses if e["feature_name"] == f} for f in features}
    by_users = sorted(features, key=lambda f: (-len(feature_users[f]), f))
    latency = {
        d: [e["duration_ms"] for e in events if e["event_type"] == "api_request" and day(e) == d]
        for d in days
    }
    api_days = [d for d in days if latency[d]]
    ai = [e for e in events if e["event_type"] in {"voice_request", "transcription", "tts", "conversation"}]
    models = sorted({e.get("model_used") or "(none)" for e in ai})
    of_model = {m: [e for e in ai if (e.get("model_used") or "(none)") == m] for m in models}
    return {
        "active_users": {"labels": days, "dau": [len(active[d]) for d in days]},
        "feature_usage": {
            "labels": by_users,
            "users": [len(feature_users[f]) for f in by_users],
            "events": [sum(e["feature_name"] == f for e in uses) for f in by_users],
        },
        "api_latency": {
            "labels": api_days,
            **{f"p{q}_ms": [float(np.percentile(latency[d], q)) for d in api_days] for q in (50, 95, 99)},
        },
        "ai_success_by_model": {
            "labels": models,
            "success_rate": [
                sum(e.get("success") is True for e in of_model[m]) / len(of_model[m]) for m in models
            ],
        },
    }


DRAWN_VALUES = """Object.fromEntries([...document.querySelectorAll('[data-panel] canvas')].map((canvas) => {
  const chart = Chart.getChart(canvas);
  const series = Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.data]));
  return [canvas.closest('[data-panel]').dataset.panel, { labels: chart.data.labels, ...series }];
}))"""


IEC = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def assert_byte_ticks(page: Page, panel_id: str) -> None:
    """A byte panel's axis reads in IEC units, each label its tick's value to the shown precision."""
    ticks = page.evaluate(
        f"Chart.getChart(document.querySelector('[data-panel={panel_id}] canvas'))"
        ".scales.y.ticks.map((t) => [t.value, t.label])"
    )
    assert len(ticks) >= 2, (panel_id, ticks)
    for value, label in ticks:
        number, unit = label.split(" ")
        digits = number.partition(".")[2]
        assert float(number.replace(",", "")) * IEC[unit] == pytest.approx(
            value, abs=0.5 * 10 ** -len(digits) * IEC[unit]
        ), (panel_id, value, label)
        assert value < 1024 * IEC[unit] or unit == "TiB", (panel_id, value, label)


@pytest.mark.parametrize("name", ["executive", "product", "tech-ops"])
def test_dashboard_draws_every_panel_without_errors(
    page: Page, dashboards_url: str, warehouse_url: str, name: str
) -> None:
    view = panels.Params(
        "default", DEMO_CONFIG.start, DEMO_CONFIG.start + timedelta(days=DEMO_CONFIG.days - 1)
    )
    page.goto(f"{dashboards_url}/{name}?project=default&from={view.date_from}&to={view.date_to}")
    page.wait_for("window.pravis && window.pravis.ready")
    drawn: dict[str, Any] = page.evaluate("window.pravis.charts")
    values: dict[str, dict[str, Any]] = page.evaluate(DRAWN_VALUES)

    # Points drawn = the non-null cells of each panel's value columns in the rows its SQL returns.
    warehouse = Warehouse(warehouse_url)
    expected = {}
    for panel in panels.page_panels(name):
        if panel.per_survey:
            panel = panels.with_survey(panel, DEMO_SURVEY.key)  # the page's default: the project's first
        columns, rows = warehouse.query(panel.sql, {**view.as_query(), **panel.parameters})
        value_columns = [columns.index(c) for c in (*panel.chart.y, *panel.chart.secondary)]
        cells = sum(row[i] is not None and row[i] == row[i] for row in rows for i in value_columns)
        expected[panel.id] = len(rows) if panel.chart.kind == "table" else cells
    assert {k: v["points"] for k, v in drawn.items()} == expected
    assert all(points > 0 for points in expected.values())

    checked = {k: v for k, v in independent_values(view).items() if panels.BY_ID[k].page == name}
    assert checked
    for panel_id, reference in checked.items():
        assert values[panel_id]["labels"] == reference.pop("labels"), panel_id
        for series, data in reference.items():
            assert values[panel_id][series] == pytest.approx(data, rel=1e-9), (panel_id, series)
    assert not any(v["error"] for v in drawn.values())
    for panel in panels.page_panels(name):
        if panel.chart.bytes:
            assert_byte_ticks(page, panel.id)
    canvases = page.evaluate("document.querySelectorAll('#panels canvas').length")
    assert canvases == sum(1 for p in panels.page_panels(name) if p.chart.kind != "table")
    sql_shown = page.evaluate("[...document.querySelectorAll('pre.sql')].map(e => e.textContent)")
    assert sql_shown == [p.sql for p in panels.page_panels(name)]
    csv_link = page.evaluate("document.querySelector('.links a[href*=\".csv\"]').href")
    assert httpx.get(csv_link).status_code == 401
    assert httpx.get(csv_link, auth=AUTH).text.splitlines()[0]
    assert errors(page) == []
    assert page.auth_challenges >= 1
    screenshot(page, name)


def test_live_view_updates_after_events_arrive(
    page: Page, dashboards_url: str, gateway_url: str, data_dir: Path
) -> None:
    key, _ = KeyStore(data_dir / "keys.json").create(LIVE_PROJECT, "write")
    page.goto(f"{dashboards_url}/live?project={LIVE_PROJECT}")
    page.wait_for("window.pravis.live.updates >= 1")
    before = page.evaluate("document.querySelector('#kpi-events_per_minute .value').textContent")
    assert before == "0"
    navigations = page.evaluate("performance.getEntriesByType('navigation').length")

    events = [page_view(anonymous_id=f"anon-{i % 7}") for i in range(40)]
    events += [
        page_view(anonymous_id="anon-0", event_type="error", error_type="Boom", error_message="x")
        for _ in range(10)
    ]
    response = httpx.post(
        f"{gateway_url}/api/v1/analytics/events",
        headers={"X-API-Key": key},
        json={"events": events, "sent_at": now_iso()},
        timeout=10,
    )
    assert response.json()["status"] == "ok", response.text

    page.wait_for("window.pravis.live.last && window.pravis.live.last.events === 50", timeout_s=60)
    tiles = page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('.kpi')].map("
        "k => [k.id, k.querySelector('.value').textContent]))"
    )
    assert tiles["kpi-active_users"] == "7"
    assert tiles["kpi-events_per_minute"] == "10"  # 50 events over the 5-minute window
    assert tiles["kpi-error_rate"] == "20.0 %"
    assert page.evaluate("window.pravis.charts.live.points") > 0
    assert page.evaluate("performance.getEntriesByType('navigation').length") == navigations
    assert errors(page) == [], json.dumps(errors(page))
    screenshot(page, "live")


def test_an_alert_link_opens_the_live_page_on_its_series(page: Page, dashboards_url: str) -> None:
    """Alerts link the Live page with their series in the query (Alertmanager's `generatorURL`)."""
    page.goto(
        f"{dashboards_url}/live?project={LIVE_PROJECT}&metric=api_error_rate&endpoint=%2Fapi%2Fv1%2Fcart"
    )
    page.wait_for("window.pravis.live.updates >= 1")
    heading = page.evaluate("document.querySelector('#panel-series h3').textContent")
    assert heading == "Alert series: api_error_rate endpoint=/api/v1/cart"
    assert page.evaluate("document.getElementById('live-series').textContent") == "not firing now"
    assert errors(page) == [], json.dumps(errors(page))


@pytest.fixture
def demo_funnel(warehouse_url: str) -> Iterator[StoredFunnel]:
    """DEMO_FUNNEL saved for the demo project and its funnel_daily computed; removed afterwards, so the other
    product-page test sees the page without funnels."""
    client = Warehouse(warehouse_url).client()
    save_demo_funnel(client)
    last = DEMO_CONFIG.start + timedelta(days=DEMO_CONFIG.days - 1)
    run_rollups(client, DEMO_CONFIG.start, last, ["funnel_daily"])
    try:
        yield DEMO_FUNNEL
    finally:
        client.command("TRUNCATE TABLE funnels")
        client.command("TRUNCATE TABLE funnel_daily")


FLOW_LINKS = """[...document.querySelectorAll('#panel-funnel_paths svg.flow path')].map((p) => [
  p.dataset.source, p.dataset.target, Number(p.dataset.units), Number(p.getAttribute('stroke-width')),
  p.querySelector('title').textContent])"""


def assert_flow_draws_the_paths(
    page: Page, funnel: StoredFunnel, events: list[dict[str, Any]], view: panels.Params
) -> None:
    """The paths flow chart has one ribbon per distinct (step, event → next event) of the paths the model
    finds, carrying its persons, and wider ribbons for more persons; the table stays under it."""
    definition = funnel.definition
    top = funnel_model.paths(
        events,
        view.date_from,
        view.date_to,
        definition.steps[0].event_type,
        3,
        definition.window_s,
        funnel_panels.PATHS_SHOWN,
    )
    expected: dict[tuple[str, str], int] = {}
    for path, _, units in top:
        steps = path.split(" → ")
        for i in range(len(steps) - 1):
            key = (f"{i}:{steps[i]}", f"{i + 1}:{steps[i + 1]}")
            expected[key] = expected.get(key, 0) + units
    drawn = page.evaluate(FLOW_LINKS)
    assert {(source, target): units for source, target, units, _, _ in drawn} == expected
    assert len(drawn) == len(expected) > 1
    by_units = sorted(drawn, key=lambda link: link[2])
    for (_, _, fewer, narrower, _), (_, _, more, wider, _) in pairwise(by_units):
        assert narrower < wider if fewer < more else narrower == wider
    assert all(title.endswith(f": {units:,} persons") for _, _, units, _, title in drawn)
    assert page.evaluate("document.querySelectorAll('#panel-funnel_paths tbody tr').length") == len(top)


def test_funnel_panels_draw_the_funnel(
    page: Page, dashboards_url: str, warehouse_url: str, demo_funnel
) -> None:
    """The funnel chart's bars are the model's counts (tests/funnel_model.py on the synthetic dataset), every
    funnel panel draws the rows its SQL returns, with and without a breakdown (the AI assistant one included),
    and shows its SQL; the breakdown picker offers the fixed breakdowns."""
    view = panels.Params(
        "default", DEMO_CONFIG.start, DEMO_CONFIG.start + timedelta(days=DEMO_CONFIG.days - 1)
    )
    events = model_events(generate(DEMO_CONFIG))
    walks = funnel_model.walks(demo_funnel.definition, events, view.date_from, view.date_to)
    expected_steps = funnel_model.funnel(walks, len(demo_funnel.definition.steps))
    warehouse = Warehouse(warehouse_url)
    for breakdown in ("", "app_version", "ai_assistant"):
        page.goto(
            f"{dashboards_url}/product?project=default&from={view.date_from}&to={view.date_to}"
            f"&funnel={demo_funnel.definition.key}&breakdown={breakdown}"
        )
        page.wait_for("window.pravis && window.pravis.ready")
        drawn: dict[str, Any] = page.evaluate("window.pravis.charts")
        worst = funnel_panels.worst_step(
            [{"step": r[2], "conversion_from_previous": r[6]} for r in expected_steps]
        )
        shown = funnel_panels.funnel_panels(demo_funnel, breakdown or None, worst)
        for panel in shown:
            columns, rows = warehouse.query(panel.sql, {**view.as_query(), **panel.parameters})
            if panel.chart.kind == "table":
                assert drawn[panel.id]["points"] == len(rows) > 0, panel.id
            else:
                cells = panels.chart_data(panel.chart, columns, rows).points
                assert drawn[panel.id]["points"] == cells > 0, panel.id
            assert not drawn[panel.id]["error"], panel.id
        sql_shown = page.evaluate("[...document.querySelectorAll('pre.sql')].map(e => e.textContent)")
        assert sql_shown[-len(shown) :][0] == shown[0].sql
        assert page.evaluate("document.getElementById('funnel').value") == demo_funnel.definition.key
        offered = page.evaluate("[...document.querySelectorAll('#breakdowns option')].map(o => o.value)")
        assert offered == ["app_version", "browser", "os", "device", "locale", "ai_assistant"]
        if breakdown == "ai_assistant":
            walks = funnel_model.walks(
                demo_funnel.definition, events, view.date_from, view.date_to, breakdown=breakdown
            )
            by_ai = funnel_model.funnel(walks, len(demo_funnel.definition.steps))
            series = page.evaluate(DRAWN_VALUES)["funnel_steps"]
            del series["labels"]
            assert series == {
                value: [row[5] for row in by_ai if row[1] == value] for value in ("not used", "used")
            }
            assert all(row[4] > 0 for row in by_ai)
        if not breakdown:
            values = page.evaluate(DRAWN_VALUES)["funnel_steps"]
            assert values["reached"] == [row[3] for row in expected_steps]
            assert values["dropped"] == [row[7] for row in expected_steps]
            assert expected_steps[-1][3] > 0
            assert_flow_draws_the_paths(page, demo_funnel, events, view)
        screenshot(page, f"product-funnel{'-' + breakdown if breakdown else ''}")
    assert errors(page) == []
    csv_link = page.evaluate("document.querySelector('#panel-funnel_exits .links a[href*=\".csv\"]').href")
    # The exits CSV runs the funnel's worst-step and drop-off queries: seconds each on a loaded machine.
    assert httpx.get(csv_link, auth=AUTH, timeout=120).text.splitlines()[0] == "kind,event,units"


def test_opportunities_panel_links_each_row_to_its_evidence(
    page: Page, dashboards_url: str, warehouse_url: str
) -> None:
    """The ranked list draws the rows its SQL returns, its comment cells link to the row's evidence, and the
    evidence panels there draw the rows of their SQL for that subject (the figures are checked by
    tests/test_opportunities.py)."""
    view = panels.Params(
        "default", DEMO_CONFIG.start, DEMO_CONFIG.start + timedelta(days=DEMO_CONFIG.days - 1)
    )
    warehouse = Warehouse(warehouse_url)
    ranked = panels.BY_ID["opportunities"]
    columns, rows = warehouse.query(ranked.sql, view.as_query())
    ranked_rows = [dict(zip(columns, row, strict=True)) for row in rows]
    page.goto(f"{dashboards_url}/product?project=default&from={view.date_from}&to={view.date_to}")
    page.wait_for("window.pravis && window.pravis.ready")
    shown = page.evaluate(
        "[...document.querySelectorAll('#panel-opportunities tbody tr')].map(r => r.firstChild.textContent)"
    )
    assert shown == [r["opportunity"] for r in ranked_rows] and shown
    headings = page.evaluate(
        "[...document.querySelectorAll('#panel-opportunities th')].map(h => h.textContent)"
    )
    assert "feedback_url" not in headings and "worst_comment" in headings
    rated = next(r for r in ranked_rows if r["feedback_url"])
    link = page.evaluate(
        f"[...document.querySelectorAll('#panel-opportunities tbody a')].map(a => a.getAttribute('href'))"
        f".find(h => h === {json.dumps(rated['feedback_url'])})"
    )
    assert link == rated["feedback_url"]
    screenshot(page, "product-with-opportunities")
    panel_screenshot(page, "opportunities")

    page.goto(dashboards_url + link)
    page.wait_for("window.pravis && window.pravis.ready")
    drawn: dict[str, Any] = page.evaluate("window.pravis.charts")
    for panel in opportunity_panels.evidence_panels(rated["kind"], rated["subject"]):
        _, evidence = warehouse.query(panel.sql, {**view.as_query(), **panel.parameters})
        assert drawn[panel.id]["points"] == len(evidence) and not drawn[panel.id]["error"], panel.id
    assert drawn["opportunity_feedback"]["points"] == min(rated["feedback"], 20)
    assert errors(page) == []
    screenshot(page, "product-opportunity-evidence")

    refused = httpx.get(f"{dashboards_url}/api/pages/product?opportunity=page:home", auth=AUTH)
    assert refused.status_code == 400 and "feature:<name> or intent:<intent>" in refused.text
    refused = httpx.get(f"{dashboards_url}/api/panels/opportunity_failures.csv?project=default", auth=AUTH)
    assert refused.status_code == 400 and "needs ?opportunity=" in refused.text


def test_survey_panels_draw_the_picked_survey(page: Page, dashboards_url: str) -> None:
    """NPS per week of the demo survey as computed here from the dataset's answers, the picker offering the
    survey, and a survey the project does not have refused with its reason."""
    view = panels.Params(
        "default", DEMO_CONFIG.start, DEMO_CONFIG.start + timedelta(days=DEMO_CONFIG.days - 1)
    )
    weeks: dict[str, list[int]] = {}
    texts = 0
    for e in generate(DEMO_CONFIG).all_events():
        if e["project_id"] == "default" and e["event_type"] == "survey_answered":
            day = parse_iso(e["timestamp"]).date()
            week = (day - timedelta(days=day.weekday())).isoformat()  # over 14 days: one point a week
            for answer in e["survey_answers"]:
                if answer["question_id"] == "nps":
                    weeks.setdefault(week, []).append(answer["value"])
                texts += bool(answer.get("text"))
    labels = sorted(weeks)
    nps = [
        100 * (sum(v >= 9 for v in weeks[w]) - sum(v <= 6 for v in weeks[w])) / len(weeks[w]) for w in labels
    ]

    page.goto(f"{dashboards_url}/product?project=default&from={view.date_from}&to={view.date_to}")
    page.wait_for("window.pravis && window.pravis.ready")
    assert page.evaluate("document.getElementById('survey').value") == DEMO_SURVEY.key
    drawn = page.evaluate(DRAWN_VALUES)["survey_nps"]
    assert drawn["labels"] == labels
    assert drawn["nps"] == pytest.approx(nps, rel=1e-9)
    assert drawn["responses"] == [len(weeks[w]) for w in labels]
    assert page.evaluate("document.querySelectorAll('#panel-survey_text_answers tbody tr').length") == min(
        texts, 20
    )
    assert errors(page) == []
    screenshot(page, "product-surveys")
    for panel_id in (
        "survey_nps",
        "survey_response_rate",
        "survey_ratings",
        "survey_text_answers",
        "feature_requests",
    ):
        panel_screenshot(page, panel_id)

    refused = httpx.get(f"{dashboards_url}/api/pages/product?survey=nope", auth=AUTH)
    assert (refused.status_code, refused.text) == (404, "no survey 'nope' in project 'default'")
    csv = httpx.get(f"{dashboards_url}/api/panels/survey_nps.csv?project=default&survey=nope", auth=AUTH)
    assert csv.status_code == 404
    empty = httpx.get(f"{dashboards_url}/api/panels/survey_nps.sql?project=no-such-project", auth=AUTH)
    assert (empty.status_code, empty.text) == (
        404,
        "survey_nps shows a survey and project 'no-such-project' has none",
    )
