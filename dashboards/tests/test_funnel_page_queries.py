"""The product page computes a funnel's steps once per view: the steps panel, the time panel and the
worst-step lookup share one query. Counted by a wrapper around the real warehouse client (every query still
runs against the warehouse), and the shared rows checked against the pure-Python model of
tests/funnel_model.py."""

import secrets
from typing import Any, ClassVar

import httpx
import pytest
from pravis_dashboards import app as dashboards_app
from pravis_dashboards import funnel_panels
from pravis_dashboards.clickhouse import Warehouse
from pravis_dashboards.settings import Settings
from pravis_local.demo import seed

from tests import funnel_model
from tests.support.demo_funnel import DEMO_FUNNEL, model_events, save_demo_funnel


class CountingWarehouse(Warehouse):
    """The dashboards' warehouse client, recording each query it sends (SQL and parameters)."""

    sent: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> tuple[list[str], list[tuple]]:
        CountingWarehouse.sent.append((sql, parameters or {}))
        return super().query(sql, parameters)


@pytest.fixture(scope="module")
def seeded(clickhouse_server: str):
    url = f"{clickhouse_server}/pravis_funnel_page_{secrets.token_hex(4)}"
    dataset = seed(url)
    save_demo_funnel(Warehouse(url).client())
    return url, dataset


@pytest.fixture
def app(seeded, monkeypatch):
    monkeypatch.setattr(dashboards_app, "Warehouse", CountingWarehouse)
    monkeypatch.setattr(CountingWarehouse, "sent", [])
    return dashboards_app.create_app(Settings(clickhouse_url=seeded[0], dashboards_auth=None))


def runs_of(sql: str) -> int:
    return sum(1 for sent, _ in CountingWarehouse.sent if sent == sql)


@pytest.mark.parametrize("breakdown", [None, "app_version"])
async def test_product_page_computes_the_funnel_once(seeded, app, breakdown: str | None) -> None:
    _, dataset = seeded
    first, last = dataset.config.start, dataset.end
    query = {"project": "default", "from": str(first), "to": str(last), "funnel": "browse-to-buy"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dashboards", timeout=300) as client:
        answer = await client.get("/api/pages/product", params={**query, "breakdown": breakdown or ""})
    assert answer.status_code == 200, answer.text
    drawn = {panel["id"]: panel for panel in answer.json()["panels"]}

    plain = funnel_panels.steps_panel(DEMO_FUNNEL, None).sql
    assert runs_of(plain) == 1
    if breakdown is not None:
        assert runs_of(funnel_panels.steps_panel(DEMO_FUNNEL, breakdown).sql) == 1
    keys = [repr((sql, sorted(params.items()))) for sql, params in CountingWarehouse.sent]
    assert len(keys) == len(set(keys)), "a query ran twice in one page view"

    events = model_events(dataset)
    expected = funnel_model.funnel(funnel_model.walks(DEMO_FUNNEL.definition, events, first, last), 3)
    times = {s["name"]: s["data"] for s in drawn["funnel_time"]["series"]}
    assert times["median_from_previous_s"] == [row[8] for row in expected]
    assert times["median_from_start_s"] == [row[10] for row in expected]
    worst = funnel_panels.worst_step([{"step": r[2], "conversion_from_previous": r[6]} for r in expected])
    assert drawn["funnel_exits"]["title"].startswith(f"Where they went instead, after step {worst} ")
    if breakdown is None:
        steps = {s["name"]: s["data"] for s in drawn["funnel_steps"]["series"]}
        assert steps["reached"] == [row[3] for row in expected] and expected[-1][3] > 0
