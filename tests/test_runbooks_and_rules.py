"""The pipeline's Prometheus rules and scrape config (deploy/prometheus) under Debian's promtool, and
docs/runbooks.md: a section for every detector series and every rule, each link landing on one, both in the
Markdown and on the page the dashboards serve at /runbooks, and every query in it running on a migrated
warehouse."""

import base64
import re
import secrets
import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
import yaml
from pravis_dashboards.app import create_app
from pravis_dashboards.settings import Settings as DashboardsSettings
from pravis_rollups import clickhouse
from pravis_schemas import ports
from pravis_schemas.messages import Alert
from pravis_schemas.silences import ALERT_METRICS
from pravis_stream.alert_sinks import Links
from pravis_stream.settings import Settings as StreamSettings

ROOT = Path(__file__).parents[1]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
RULE_RUNBOOK = re.compile(r"\{\{ \$externalLabels\.runbook_base \}\}/runbooks#([\w-]+)")
"""How every rule links its section: the base is the Prometheus server's external label `runbook_base`."""


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: `make test-tools` installs Debian's prometheus package")
    return subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation (but - and _) dropped, spaces
    to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def runbook_anchors() -> set[str]:
    return {github_anchor(h) for h in re.findall(r"^#{2,3} (.+)$", RUNBOOKS.read_text(), flags=re.M)}


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_config_and_rules_and_their_unit_tests_pass():
    for args in (
        ("check", "config", "prometheus.yml"),
        ("check", "rules", "rules.yml"),
        ("test", "rules", "rules_test.yml"),
    ):
        done = promtool(*args)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_rule_tests_fail_when_a_rule_changes(tmp_path: Path):
    """The unit tests pin the thresholds: a gateway rule tolerating half its requests failing is caught."""
    rules = (PROMETHEUS / "rules.yml").read_text()
    assert rules.count("> 0.01") == 1
    (tmp_path / "rules.yml").write_text(rules.replace("> 0.01", "> 0.5"))
    shutil.copy(PROMETHEUS / "rules_test.yml", tmp_path)
    done = promtool("test", "rules", "rules_test.yml", cwd=tmp_path)
    assert done.returncode != 0 and "PravisGatewayErrors" in done.stdout + done.stderr


def test_every_rule_has_a_firing_case_and_a_runbook_section():
    tests = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())["tests"]
    firing = {
        case["alertname"] for test in tests for case in test["alert_rule_test"] if case.get("exp_alerts")
    }
    anchors = runbook_anchors()
    for rule in alert_rules():
        assert rule["alert"] in firing, f"{rule['alert']} never fires in rules_test.yml"
        link = RULE_RUNBOOK.fullmatch(rule["annotations"]["runbook_url"])
        assert link, f"{rule['alert']}: {rule['annotations']['runbook_url']}"
        assert link[1] in anchors, f"{rule['alert']}: no runbook section #{link[1]}"


def test_the_rules_runbook_base_is_the_embedded_dashboards():
    external = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["global"]["external_labels"]
    assert external["runbook_base"] == f"http://{ports.LOCAL_HOST}:{ports.DASHBOARDS}"


def alert_of(metric: str) -> Alert:
    now = datetime.now(UTC)
    return Alert(
        alert_id="a",
        status="firing",
        severity="warning",
        project_id="p",
        metric=metric,
        observed=1,
        expected=0,
        window_start=now,
        window_end=now,
        started_at=now,
    )


def test_every_detector_series_links_its_runbook_section():
    anchors = runbook_anchors()
    links = Links("https://docs.example/runbooks.md", "http://dashboards.example")
    for metric in ALERT_METRICS:
        assert links.runbook(alert_of(metric)).split("#")[1] in anchors, f"no runbook section for {metric}"


class Anchors(HTMLParser):
    """Every element id of a page, and every in-page link (`href="#..."`) on it."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.fragments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if named.get("id"):
            self.ids.append(named["id"])
        if tag == "a" and (named.get("href") or "").startswith("#"):
            self.fragments.append(named["href"][1:])


async def served(
    path: str, settings: DashboardsSettings, headers: dict[str, str] | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://dashboards") as client:
        return await client.get(path, headers=headers)


async def test_every_link_an_alert_or_rule_carries_lands_on_a_section_of_the_served_page(monkeypatch):
    monkeypatch.delenv("PRAVIS_STREAM_RUNBOOK_URL", raising=False)
    page = await served("/runbooks", DashboardsSettings(dashboards_auth=None))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    found = Anchors()
    found.feed(page.text)
    assert len(found.ids) == len(set(found.ids)), "two sections share an anchor"
    ids = set(found.ids)

    stream = StreamSettings(stream_dashboards_url="https://dashboards.example:8443/")
    links = Links(stream.runbook_url, stream.stream_dashboards_url)
    for metric in ALERT_METRICS:
        url = httpx.URL(links.runbook(alert_of(metric)))
        assert (url.scheme, url.host, url.port, url.path) == (
            "https",
            "dashboards.example",
            8443,
            "/runbooks",
        )
        assert url.fragment in ids, f"{metric}: no section #{url.fragment} on /runbooks"
    for rule in alert_rules():
        anchor = RULE_RUNBOOK.fullmatch(rule["annotations"]["runbook_url"])[1]
        assert anchor in ids, f"{rule['alert']}: no section #{anchor} on /runbooks"
    assert found.fragments, "the runbooks cross-link their sections"
    for fragment in found.fragments:
        assert fragment in ids, f"the link #{fragment} on /runbooks lands nowhere"


def test_a_runbook_url_set_replaces_the_dashboards_page():
    stream = StreamSettings(
        stream_runbook_url="https://wiki.example/oncall", stream_dashboards_url="http://d"
    )
    assert Links(stream.runbook_url, "http://d").runbook(alert_of("traffic_drop")) == (
        "https://wiki.example/oncall#traffic_drop"
    )


async def test_the_runbooks_need_the_dashboards_credentials():
    settings = DashboardsSettings(dashboards_auth="basic:oncall:s3cret")
    assert (await served("/runbooks", settings)).status_code == 401
    basic = base64.b64encode(b"oncall:s3cret").decode()
    granted = await served("/runbooks", settings, {"Authorization": f"Basic {basic}"})
    assert granted.status_code == 200 and "PravisGatewayErrors" in granted.text


def test_the_scrape_config_reaches_every_service_metrics_port():
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    serving_metrics = [
        ports.GATEWAY,
        ports.STREAM_WEB,
        ports.DASHBOARDS,
        ports.LOADER_HEALTH,
        ports.SCHEDULER_HEALTH,
        ports.PRIVACY_HEALTH,
        ports.MONITOR,
    ]
    assert targets == {f"{ports.LOCAL_HOST}:{port}" for port in serving_metrics}


def runbook_queries() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", RUNBOOKS.read_text(), flags=re.S)
    return [s.strip() for block in blocks for s in re.split(r";\s*$", block, flags=re.M) if s.strip()]


def test_every_runbook_query_runs_as_written(clickhouse_server: str):
    queries = runbook_queries()
    assert len(queries) >= 12
    url = f"{clickhouse_server}/pravis_runbooks_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    with clickhouse.connect(url) as client:
        for sql in queries:
            client.query(sql)
