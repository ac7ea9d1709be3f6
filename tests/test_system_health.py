"""The system health summary through the real stack: the broker, warehouse and gateway of the fixtures, a
loader and stream worker of this module's own (so that stopping them leaves the session's alone), the stack
monitor and the dashboards. Traffic turns the stages and endpoints green; a stopped stage turns red; a source
that stops answering turns what it judged unknown, never green. The panel is then checked in Chromium.

Expected colours come from what the test sent (every /api/v1/cart call fast and 2xx, one /api/v1/pay call in
ten a 500, i.e. 10 % ≥ the default 5 % red line, no /api/v1/checkout call though it is monitored: amber) and
from which processes it stopped, not from the rule's code."""

import base64
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from pravis_gateway.keys import KeyStore

from tests.browser import CHROMIUM, Page, chromium_page
from tests.helpers import page_view, post_batch
from tests.support import services

PROJECT = "health-stack"
SCREENSHOTS = Path(__file__).parent.parent / "artifacts" / "screenshots"
STAGES = ("gateway", "broker", "stream", "loader", "warehouse", "scheduler")
TRAFFIC_COLOURS = {
    **dict.fromkeys(("gateway", "broker", "stream", "loader", "warehouse"), "green"),
    "scheduler": "red",
    "/api/v1/cart": "green",
    "/api/v1/pay": "red",
    "/api/v1/checkout": "amber",
}
"""After `send_traffic`, with every stage but the scheduler running; /api/v1/checkout is monitored and gets no
request."""


def port_of(url: str) -> int:
    port = urlsplit(url if "://" in url else f"kafka://{url}").port
    assert port is not None
    return port


@pytest.fixture(scope="module")
def stack(
    worker_env: dict[str, str],
    gateway_url: str,
    clickhouse_server: str,
    kafka_bootstrap: str,
    log_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, object]]:
    loader_port, stream_port, monitor_port, dashboards_port = (services.free_port() for _ in range(4))
    loader_group = f"health-loader-{secrets.token_hex(4)}"
    stream_group = f"health-stream-{secrets.token_hex(4)}"
    loader_env = {
        **worker_env,
        "PRAVIS_LOADER_GROUP_ID": loader_group,
        "PRAVIS_LOADER_HEALTH_PORT": str(loader_port),
    }
    stream_env = {
        **worker_env,
        "PRAVIS_STREAM_APP_ID": stream_group,
        "PRAVIS_STREAM_WEB_PORT": str(stream_port),
        "PRAVIS_STREAM_PERSIST_INTERVAL_S": "0.5",
        "PRAVIS_STREAM_SESSION_TIMEOUT_S": "6",
        "PRAVIS_STREAM_REBALANCE_TIMEOUT_S": "3",
    }
    monitor_env = {
        "PRAVIS_DATA_DIR": str(tmp_path_factory.mktemp("health-monitor")),
        "PRAVIS_BROKER_PORT": str(port_of(kafka_bootstrap)),
        "PRAVIS_WAREHOUSE_PORT": str(port_of(clickhouse_server)),
        "PRAVIS_GATEWAY_PORT": str(port_of(gateway_url)),
        "PRAVIS_STREAM_WEB_PORT": str(stream_port),
        "PRAVIS_LOADER_HEALTH_PORT": str(loader_port),
        # No scheduler runs here: its port answers nothing, so its status must be red throughout.
        "PRAVIS_SCHEDULER_HEALTH_PORT": str(services.free_port()),
        "PRAVIS_RESOURCE_REPORT_S": "0",
    }
    dashboards_env = {
        "PRAVIS_CLICKHOUSE_URL": worker_env["PRAVIS_CLICKHOUSE_URL"],
        "PRAVIS_STREAM_URL": f"http://127.0.0.1:{stream_port}",
        "PRAVIS_DASHBOARDS_MONITOR_URL": f"http://127.0.0.1:{monitor_port}",
        "PRAVIS_DASHBOARDS_HEALTH_LOADER_GROUP": loader_group,
        "PRAVIS_DASHBOARDS_HEALTH_STREAM_GROUP": stream_group,
        "PRAVIS_DASHBOARDS_HEALTH_POLL_S": "1",
        "PRAVIS_DASHBOARDS_HEALTH_MONITORED_ENDPOINTS": "/api/v1/checkout",
    }
    processes = {
        "loader": services.Process(
            "health-loader", [sys.executable, "-m", "pravis_rollups.loader"], log_dir, loader_env
        ),
        "stream": services.Process(
            "health-stream", [sys.executable, "-m", "pravis_stream"], log_dir, stream_env
        ),
        "monitor": services.Process(
            "health-monitor",
            [sys.executable, "-m", "pravis_local.monitor", "--port", str(monitor_port)],
            log_dir,
            monitor_env,
        ),
        "dashboards": services.Process(
            "health-dashboards",
            [sys.executable, "-m", "pravis_dashboards", "--port", str(dashboards_port)],
            log_dir,
            dashboards_env,
        ),
    }
    health_urls = {
        "loader": f"http://127.0.0.1:{loader_port}/healthz",
        "stream": f"http://127.0.0.1:{stream_port}/healthz",
        "monitor": f"http://127.0.0.1:{monitor_port}/healthz",
        "dashboards": f"http://127.0.0.1:{dashboards_port}/healthz",
    }
    try:
        for name, process in processes.items():
            process.start()
            services.wait_for_http(health_urls[name], process.popen, timeout_s=90)
        yield {**processes, "url": f"http://127.0.0.1:{dashboards_port}"}
    finally:
        for process in processes.values():
            process.stop()


def colours(dashboards: str) -> dict[str, str]:
    response = httpx.get(f"{dashboards}/api/health/{PROJECT}", timeout=30)
    assert response.status_code == 200, response.text
    return {status["name"]: status["status"] for status in response.json()["statuses"]}


def wait_for_colours(dashboards: str, expected: dict[str, str], timeout_s: float = 90.0) -> dict[str, str]:
    """Polls the summary until the named components show the expected colours (the monitor and the stream
    tier see a change only on their next check or commit)."""
    deadline = time.monotonic() + timeout_s
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        seen = colours(dashboards)
        if all(seen.get(name) == colour for name, colour in expected.items()):
            return seen
        time.sleep(0.5)
    raise AssertionError(f"expected {expected}, last saw {seen}")


def api_request(endpoint: str, status: int) -> dict:
    return page_view(
        event_type="api_request", endpoint=endpoint, method="GET", status=status, duration_ms=40.0
    )


def send_traffic(gateway_url: str, key: str) -> None:
    events = [page_view(anonymous_id=f"anon-{i % 5}") for i in range(30)]
    events += [api_request("/api/v1/cart", 200) for _ in range(20)]
    events += [api_request("/api/v1/pay", 500 if i == 0 else 200) for i in range(10)]
    post_batch(gateway_url, key, events)


def test_summary_refuses_an_over_long_project(stack: dict) -> None:
    response = httpx.get(f"{stack['url']}/api/health/{'p' * 201}", timeout=10)
    assert response.status_code == 400
    assert response.text == "project must be at most 200 characters"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_executive_page_shows_each_status_next_to_its_rule(
    stack: dict, gateway_url: str, data_dir: Path, log_dir: Path
) -> None:
    dashboards = stack["url"]
    key, _ = KeyStore(data_dir / "keys.json").create(PROJECT, "write")
    send_traffic(gateway_url, key)
    wait_for_colours(dashboards, TRAFFIC_COLOURS)
    with chromium_page(log_dir) as page:
        viewport(page, 1000)
        page.goto(f"{dashboards}/executive?project={PROJECT}")
        page.wait_for("window.pravis && window.pravis.health.updates >= 1", timeout_s=60)
        api = colours(dashboards)
        drawn = wait_for_drawn(page, api)
        assert drawn == api
        rules = page.evaluate(
            "[...document.querySelectorAll('#health-table tr[data-health] td.rule')]"
            ".map(td => td.textContent)"
        )
        assert len(rules) == len(api) and all("red:" in rule for rule in rules)
        screenshot(page)


def wait_for_drawn(page: Page, expected: dict[str, str], timeout_s: float = 30.0) -> dict[str, str]:
    """The chips on the page once they agree with the API (the page refreshes every second)."""
    deadline = time.monotonic() + timeout_s
    drawn: dict[str, str] = {}
    while time.monotonic() < deadline:
        drawn = page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('#health-table tr[data-health]')]"
            ".map(tr => [tr.dataset.health, tr.querySelector('.chip').textContent]))"
        )
        if drawn == expected:
            break
        time.sleep(0.5)
    return drawn


def viewport(page: Page, height: int) -> None:
    page.call(
        "Emulation.setDeviceMetricsOverride", width=1440, height=height, deviceScaleFactor=1, mobile=False
    )


def screenshot(page: Page) -> None:
    height = page.evaluate("document.documentElement.scrollHeight")
    viewport(page, height)
    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "dashboards-system-health.png").write_bytes(base64.b64decode(shot["data"]))


def test_summary_follows_traffic_then_stopped_stages(stack: dict, gateway_url: str, data_dir: Path) -> None:
    dashboards = stack["url"]
    key, _ = KeyStore(data_dir / "keys.json").create(PROJECT, "write")

    send_traffic(gateway_url, key)
    seen = wait_for_colours(dashboards, TRAFFIC_COLOURS)
    assert set(seen) == {*STAGES, "/api/v1/cart", "/api/v1/pay", "/api/v1/checkout"}

    stack["loader"].stop()
    wait_for_colours(dashboards, {"loader": "red", "stream": "green", "gateway": "green"})

    stack["stream"].stop()
    # The live API is gone: the stream is down (red); what only it measured is unknown, not green.
    seen = wait_for_colours(
        dashboards, {"stream": "red", "gateway": "unknown", "*": "unknown", "/api/v1/checkout": "unknown"}
    )
    assert "/api/v1/cart" not in seen

    stack["monitor"].stop()
    seen = wait_for_colours(dashboards, dict.fromkeys(STAGES, "unknown"))
    assert "green" not in seen.values()
