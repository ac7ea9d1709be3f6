"""The pipeline's Prometheus rules and scrape config (deploy/prometheus) under Debian's promtool, and
docs/runbooks.md: a section for every detector series and every rule, each link landing on one, and every
query in it running on a migrated warehouse."""

import re
import secrets
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pravis_rollups import clickhouse
from pravis_schemas import ports
from pravis_schemas.messages import Alert
from pravis_schemas.silences import ALERT_METRICS
from pravis_stream.alert_sinks import Links

ROOT = Path(__file__).parents[1]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RUNBOOKS = ROOT / "docs" / "runbooks.md"


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
        url = rule["annotations"]["runbook_url"]
        assert url.split("#")[0].endswith("docs/runbooks.md"), url
        assert url.split("#")[1] in anchors, f"{rule['alert']}: no runbook section #{url.split('#')[1]}"


def test_every_detector_series_links_its_runbook_section():
    now = datetime.now(UTC)
    anchors = runbook_anchors()
    links = Links("https://docs.example/runbooks.md", "http://dashboards.example")
    for metric in ALERT_METRICS:
        alert = Alert(
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
        assert links.runbook(alert).split("#")[1] in anchors, f"no runbook section for {metric}"


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
