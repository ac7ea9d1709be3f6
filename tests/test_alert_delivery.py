"""Alert sinks and silences end to end: gateway → events → the real stream worker → a real Prometheus
Alertmanager (Debian's `prometheus-alertmanager`), a PagerDuty-shaped receiver and a signed-webhook receiver
on loopback; `pravis alerts silence|list|expire` against the real broker.

The worker runs with 1-second detection buckets like tests/test_stream.py. Two projects get the same
traffic; the second one is silenced with the CLI before its burst, so its alert must reach the `alerts`
topic and no sink.
"""

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from pravis_gateway.keys import KeyStore
from pravis_schemas import topics
from standardwebhooks.webhooks import Webhook

from tests.helpers import now_iso, page_view
from tests.support import services
from tests.support.receivers import Receiver

PRAVIS = str(Path(sys.executable).with_name("pravis"))
ALERTMANAGER = "prometheus-alertmanager"
SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM="  # base64 of 20 bytes
ROUTING_KEY = "R" + "0" * 31
PAGERDUTY_EVENT = {  # the fields PagerDuty's Events API v2 requires (developer.pagerduty.com)
    "type": "object",
    "required": ["routing_key", "event_action", "dedup_key"],
    "properties": {"event_action": {"enum": ["trigger", "acknowledge", "resolve"]}},
    "if": {"properties": {"event_action": {"const": "trigger"}}},
    "then": {
        "required": ["payload"],
        "properties": {
            "payload": {
                "required": ["summary", "source", "severity"],
                "properties": {"severity": {"enum": ["critical", "error", "warning", "info"]}},
            }
        },
    },
}


def pravis(*args: str, env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess:
    # A wide terminal, so rich prints whole table cells; the timeout only bounds a hang.
    environment = {**os.environ, "COLUMNS": "250", **env}
    done = subprocess.run([PRAVIS, *args], capture_output=True, text=True, env=environment, timeout=120)
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def pagerduty_check(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    event = json.loads(body)
    jsonschema.validate(event, PAGERDUTY_EVENT)
    return event


@pytest.fixture(scope="module")
def receivers() -> Iterator[dict[str, Receiver]]:
    made = {
        "alertmanager_notifications": Receiver(lambda body, headers: json.loads(body)),
        "pagerduty": Receiver(pagerduty_check),
        "signed": Receiver(lambda body, headers: Webhook(SECRET).verify(body, headers)),
    }
    yield made
    for receiver in made.values():
        receiver.close()


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory, log_dir: Path, receivers: dict[str, Receiver]) -> Iterator[str]:
    """A real Alertmanager on a free port that notifies our receiver at once, resolves included."""
    binary = shutil.which(ALERTMANAGER)
    if binary is None:
        pytest.fail(f"{ALERTMANAGER} is missing: `make test-tools` installs Debian's prometheus-alertmanager")
    home = tmp_path_factory.mktemp("alertmanager")
    config = home / "alertmanager.yml"
    config.write_text(
        json.dumps(
            {
                "route": {
                    "receiver": "test",
                    "group_by": ["alertname", "project", "metric"],
                    "group_wait": "0s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "test",
                        "webhook_configs": [
                            {"url": receivers["alertmanager_notifications"].url, "send_resolved": True}
                        ],
                    }
                ],
            }
        )
    )
    port = services.free_port()
    process = services.Process(
        "alertmanager",
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        log_dir,
    ).start()
    try:
        services.wait_for_http(f"http://127.0.0.1:{port}/-/ready", process.popen)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


@pytest.fixture(scope="module")
def stream(worker_env, log_dir: Path, alertmanager: str, receivers: dict[str, Receiver]) -> Iterator[str]:
    port = services.free_port()
    env = {
        **worker_env,
        "PRAVIS_STREAM_ALERTMANAGER_URLS": alertmanager,
        "PRAVIS_STREAM_ALERTMANAGER_RESEND_S": "1",
        "PRAVIS_STREAM_PAGERDUTY_ROUTING_KEY": ROUTING_KEY,
        "PRAVIS_STREAM_PAGERDUTY_URL": receivers["pagerduty"].url,
        "PRAVIS_STREAM_SIGNED_WEBHOOK_URLS": receivers["signed"].url,
        "PRAVIS_STREAM_SIGNED_WEBHOOK_SECRET": SECRET,
        "PRAVIS_STREAM_DASHBOARDS_URL": "http://dashboards.example:8080",
        "PRAVIS_STREAM_APP_ID": f"pravis-stream-sinks-{secrets.token_hex(4)}",
        "PRAVIS_STREAM_WEB_PORT": str(port),
        "PRAVIS_STREAM_DETECT_INTERVAL_S": "1",
        "PRAVIS_STREAM_DETECT_GRACE_S": "0.3",
        "PRAVIS_STREAM_WARMUP_BUCKETS": "5",
        "PRAVIS_STREAM_MIN_EVENTS_PER_BUCKET": "5",
        "PRAVIS_STREAM_RESOLVE_AFTER_BUCKETS": "2",
        "PRAVIS_STREAM_COOLDOWN_BUCKETS": "30",
    }
    process = services.Process("stream-sinks", [sys.executable, "-m", "pravis_stream"], log_dir, env).start()
    try:
        services.wait_for_http(f"http://127.0.0.1:{port}/healthz", process.popen, timeout_s=90)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def alerts_on_topic(bootstrap: str) -> list[tuple[int, dict[str, Any]]]:
    """(offset, alert) of every message on `alerts` so far (one partition: offsets order them)."""

    async def run() -> list[tuple[int, dict[str, Any]]]:
        tp = TopicPartition(topics.ALERTS, 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            found = []
            while await consumer.position(tp) < end:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        try:
                            found.append((record.offset, json.loads(record.value)))
                        except ValueError:
                            continue  # other tests publish junk too
            return found
        finally:
            await consumer.stop()

    return asyncio.run(run())


def metric_value(metrics_text: str, name: str, labels: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name}{{{labels}}} is not in /metrics")


def test_an_anomaly_fires_and_resolves_in_every_sink_and_a_silenced_one_in_none(
    stream: str,
    alertmanager: str,
    receivers: dict[str, Receiver],
    gateway_url: str,
    data_dir: Path,
    kafka_bootstrap: str,
):
    loud, quiet = f"sinks-{secrets.token_hex(3)}", f"silenced-{secrets.token_hex(3)}"
    env = {"PRAVIS_KAFKA_BOOTSTRAP": kafka_bootstrap}
    silenced = pravis(
        "alerts",
        "silence",
        "--project",
        quiet,
        "--metric",
        "error_rate",
        "--for",
        "1h",
        "--comment",
        "deploy of the checkout",
        env=env,
    )
    silence_id = silenced.stdout.strip()
    assert uuid.UUID(silence_id)
    clients = {
        project: httpx.Client(
            base_url=gateway_url,
            headers={"X-API-Key": KeyStore(data_dir / "keys.json").create(project, "write")[0]},
            timeout=10,
        )
        for project in (loud, quiet)
    }

    def firing_now(project: str) -> list[str]:
        body = httpx.get(f"{stream}/live/{project}/alerts", timeout=10).json()
        return [a["metric"] for a in body["firing"]]

    def send_until(done, views: int, errors: int, limit_s: float = 90.0) -> None:
        """Post to both projects until `done()` holds; the limit only bounds a hang (buckets are wall-clock
        seconds, so on a loaded machine the phases last longer)."""
        deadline = time.monotonic() + limit_s
        while not done():
            assert time.monotonic() < deadline, "the stream worker never reached the expected state"
            for client in clients.values():
                events = [page_view() for _ in range(views)]
                events += [
                    page_view(event_type="error", error_type="E", error_message="m") for _ in range(errors)
                ]
                response = client.post(
                    "/api/v1/analytics/events", json={"events": events, "sent_at": now_iso()}
                )
                assert response.status_code == 200, response.text
            time.sleep(0.1)

    baseline_until = time.monotonic() + 7.0
    send_until(lambda: time.monotonic() >= baseline_until, views=10, errors=0)
    send_until(lambda: {"error_rate"} <= {*firing_now(loud)} & {*firing_now(quiet)}, views=4, errors=8)

    # The errors are also a new error pattern (issue 24's `new_error_pattern` series): only error_rate's
    # alerts are this test's.
    def am_alerts() -> list[dict[str, Any]]:
        params = {"filter": [f'project="{loud}"', 'metric="error_rate"']}
        return httpx.get(f"{alertmanager}/api/v2/alerts", params=params, timeout=10).json()

    services.wait_for(lambda: am_alerts(), 30, "the alert in Alertmanager")
    [held] = am_alerts()
    assert held["labels"].pop("severity") in {"warning", "critical"}
    assert held["labels"] == {"alertname": "PravisAnomaly", "project": loud, "metric": "error_rate"}
    assert held["status"]["state"] == "active"
    # No PRAVIS_STREAM_RUNBOOK_URL: the runbook is the page the dashboards serve.
    assert held["annotations"]["runbook_url"] == "http://dashboards.example:8080/runbooks#error_rate"
    assert float(held["annotations"]["observed"]) >= float(held["annotations"]["expected"]) + 0.05
    assert held["generatorURL"] == f"http://dashboards.example:8080/live?project={loud}&metric=error_rate"

    send_until(lambda: not firing_now(loud) and not firing_now(quiet), views=10, errors=0)

    def notified(status: str) -> list[dict[str, Any]]:
        return [
            alert
            for note in list(receivers["alertmanager_notifications"].accepted)
            for alert in note["alerts"]
            if alert["labels"]["project"] == loud
            and alert["labels"]["metric"] == "error_rate"
            and alert["status"] == status
        ]

    services.wait_for(lambda: notified("resolved"), 30, "Alertmanager's resolved notification")
    assert (
        notified("firing")[0]["annotations"]["alert_id"] == notified("resolved")[0]["annotations"]["alert_id"]
    )
    services.wait_for(lambda: not am_alerts(), 30, "the alert gone from Alertmanager's active list")

    def seen(receiver: str, project: str) -> list[dict[str, Any]]:
        if receiver == "pagerduty":
            # A resolve carries no payload: it belongs to the series its dedup key was triggered for.
            events = [e for e in receivers["pagerduty"].accepted if e["dedup_key"].startswith(f"{project}-")]
            keys = {
                e["dedup_key"]
                for e in events
                if e["event_action"] == "trigger" and e["payload"]["component"] == "error_rate"
            }
            return [e for e in events if e["dedup_key"] in keys]
        return [
            m
            for m in receivers["signed"].accepted
            if m["data"]["project_id"] == project and m["data"]["metric"] == "error_rate"
        ]

    services.wait_for(
        lambda: len(seen("pagerduty", loud)) == 2 and len(seen("signed", loud)) == 2, 30, "sinks"
    )
    on_topic = [
        (offset, a) for offset, a in alerts_on_topic(kafka_bootstrap) if a.get("metric") == "error_rate"
    ]
    [loud_firing, loud_resolved] = [(o, a) for o, a in on_topic if a["project_id"] == loud]
    assert [e["event_action"] for e in seen("pagerduty", loud)] == ["trigger", "resolve"]
    assert {e["dedup_key"] for e in seen("pagerduty", loud)} == {loud_firing[1]["alert_id"]}
    assert [m["type"] for m in seen("signed", loud)] == ["alert.firing", "alert.resolved"]
    assert receivers["pagerduty"].refused == receivers["signed"].refused == []

    # The silenced project's alert was detected and published before the loud one resolved: each sink's
    # queue is in order, so had it been handed over it would have arrived before the resolve did.
    quiet_firing = [o for o, a in on_topic if a["project_id"] == quiet and a["status"] == "firing"]
    assert quiet_firing and quiet_firing[0] < loud_resolved[0]
    assert seen("pagerduty", quiet) == seen("signed", quiet) == []
    assert not [
        n
        for n in receivers["alertmanager_notifications"].accepted
        for a in n["alerts"]
        if a["labels"]["project"] == quiet and a["labels"]["metric"] == "error_rate"
    ]
    metrics = httpx.get(f"{stream}/metrics", timeout=10).text
    assert metric_value(metrics, "pravis_stream_alerts_silenced_total", 'metric="error_rate"') >= 1
    assert metric_value(metrics, "pravis_stream_alert_sink_up", 'sink="alertmanager:127.0.0.1"') == 1

    listed = pravis("alerts", "list", "--project", quiet, env=env).stdout
    assert silence_id in listed and "deploy of the checkout" in listed and "active" in listed
    pravis("alerts", "expire", silence_id, env=env)
    assert silence_id not in pravis("alerts", "list", "--project", quiet, env=env).stdout
    assert "ended" in pravis("alerts", "list", "--all", "--project", quiet, env=env).stdout
    for client in clients.values():
        client.close()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--metric", "cpu"], "'cpu' is not a detector series"),
        (["--for", "1 hour"], "is not a duration such as 30m"),
        (["--for", "0m"], "must be more than 0 and at most 30 days"),
        (["--for", "31d"], "must be more than 0 and at most 30 days"),
        (["--label", "endpoint"], "'endpoint' is not key=value"),
        (["--label", "a=1", "--label", "a=2"], "label 'a' is given twice"),
        (["--project", ""], "project_id: String should have at least 1 character"),
        (["--starts", "tomorrow"], "is not an ISO-8601 time"),
        (["--starts", "2099-01-01T10:00"], "has no UTC offset"),
        (["--starts", "2001-01-01T10:00Z"], "is in the past"),
    ],
)
def test_pravis_alerts_silence_refuses_bad_input_with_the_reason(kafka_bootstrap: str, args, reason):
    given = {"--project": "p", "--metric": "error_rate", "--for": "1h", "--comment": "c"}
    extra = []
    for flag, value in zip(args[::2], args[1::2], strict=True):
        if flag == "--label":
            extra += [flag, value]
        else:
            given[flag] = value
    argv = ["alerts", "silence", *[x for pair in given.items() for x in pair], *extra]
    done = pravis(*argv, env={"PRAVIS_KAFKA_BOOTSTRAP": kafka_bootstrap}, ok=False)
    assert done.returncode == 2
    assert reason in " ".join(done.stderr.split()), done.stderr


def test_pravis_alerts_expire_refuses_an_unknown_or_ended_silence(kafka_bootstrap: str):
    env = {"PRAVIS_KAFKA_BOOTSTRAP": kafka_bootstrap}
    unknown = pravis("alerts", "expire", "no-such-silence", env=env, ok=False)
    assert unknown.returncode == 1 and "no silence with id no-such-silence" in unknown.stderr
    made = pravis(
        "alerts",
        "silence",
        "--project",
        "p",
        "--metric",
        "traffic_drop",
        "--label",
        "x=y",
        "--for",
        "10m",
        "--comment",
        "c",
        env=env,
    ).stdout.strip()
    pravis("alerts", "expire", made, env=env)
    again = pravis("alerts", "expire", made, env=env, ok=False)
    assert again.returncode == 1 and f"silence {made} already ended" in again.stderr


def test_a_maintenance_window_ahead_is_listed_as_pending_and_can_be_called_off(kafka_bootstrap: str):
    env = {"PRAVIS_KAFKA_BOOTSTRAP": kafka_bootstrap}
    project = f"window-{secrets.token_hex(3)}"
    window = pravis(
        "alerts",
        "silence",
        "--project",
        project,
        "--metric",
        "traffic_drop",
        "--starts",
        "2099-12-31T22:00:00+01:00",
        "--for",
        "2h",
        "--comment",
        "datacenter move",
        env=env,
    ).stdout.strip()
    [row] = [line for line in pravis("alerts", "list", "--project", project, env=env).stdout.splitlines()
             if window in line]  # fmt: skip
    assert "2099-12-31 21:00Z" in row and "2099-12-31 23:00Z" in row and "pending" in row
    pravis("alerts", "expire", window, env=env)
    assert window not in pravis("alerts", "list", "--project", project, env=env).stdout
