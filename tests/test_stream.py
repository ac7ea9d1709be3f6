"""End to end on the real broker: gateway → events → stream worker → live API, `alerts`, `feedback.scored`.

The worker runs with short windows (1 s detection buckets, 5-bucket warm-up) so a baseline, an error burst,
its alert and its resolve fit in a few seconds; then it is killed (SIGKILL) and restarted, and its counters
must continue from its table.
"""

import asyncio
import contextlib
import json
import os
import queue
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pravis_gateway.keys import KeyStore
from pravis_schemas import topics
from pravis_schemas.messages import Alert, AlertStatus, Severity
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tests.helpers import now_iso, page_view, query_rows, wait_until_equal
from tests.support import services

EVENTS_PATH = "/api/v1/analytics/events"
PROJECT = "stream-e2e"


def error_event(**overrides: Any) -> dict[str, Any]:
    return {
        **page_view(event_type="error", error_type="CheckoutFailed", error_message="payment widget crashed"),
        **overrides,
    }


def feedback(rating: int, comment: str) -> dict[str, Any]:
    event = page_view(event_type="feedback", rating=rating, comment=comment, interaction_id="i-1")
    event.pop("page_url")
    return event


class Stream:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = int(env["PRAVIS_STREAM_WEB_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = services.Process("stream", [sys.executable, "-m", "pravis_stream"], log_dir, env)

    def start(self) -> "Stream":
        self.process.start()
        services.wait_for_http(self.url + "/healthz", self.process.popen, timeout_s=90)
        return self

    def summary(self, window: str = "1h") -> dict[str, Any]:
        return httpx.get(f"{self.url}/live/{PROJECT}/summary", params={"window": window}, timeout=5).json()

    def wait_for_total(self, total: int, timeout_s: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        body = self.summary()
        while body["events"]["total"] != total and time.monotonic() < deadline:
            time.sleep(0.1)
            body = self.summary()
        return body


class WebhookReceiver(ThreadingHTTPServer):
    """A Slack-style incoming webhook on loopback: records every JSON body posted to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        yield receiver
    finally:
        receiver.shutdown()
        receiver.server_close()


def short_windows(worker_env: dict[str, str]) -> dict[str, str]:
    """A worker of its own (app id, port) with 1-second buckets and a 5-bucket warm-up."""
    return {
        **worker_env,
        "PRAVIS_STREAM_APP_ID": f"pravis-stream-test-{secrets.token_hex(4)}",
        "PRAVIS_STREAM_WEB_PORT": str(services.free_port()),
        "PRAVIS_STREAM_DETECT_INTERVAL_S": "1",
        "PRAVIS_STREAM_DETECT_GRACE_S": "0.3",
        "PRAVIS_STREAM_WARMUP_BUCKETS": "5",
        "PRAVIS_STREAM_MIN_EVENTS_PER_BUCKET": "5",
        "PRAVIS_STREAM_RESOLVE_AFTER_BUCKETS": "2",
        "PRAVIS_STREAM_COOLDOWN_BUCKETS": "30",
        "PRAVIS_STREAM_PERSIST_INTERVAL_S": "0.5",
        "PRAVIS_STREAM_SESSION_TIMEOUT_S": "6",
        "PRAVIS_STREAM_REBALANCE_TIMEOUT_S": "3",
    }


@pytest.fixture(scope="module")
def stream(worker_env: dict[str, str], log_dir: Path, webhook: WebhookReceiver) -> Iterator[Stream]:
    worker = Stream({**short_windows(worker_env), "PRAVIS_STREAM_WEBHOOK_URLS": webhook.url}, log_dir).start()
    try:
        yield worker
    finally:
        worker.process.stop()


@pytest.fixture(scope="module")
def post(gateway_url: str, data_dir: Path):
    key, _ = KeyStore(data_dir / "keys.json").create(PROJECT, "write")
    client = httpx.Client(base_url=gateway_url, headers={"X-API-Key": key}, timeout=10)

    def send(events: list[dict[str, Any]]) -> None:
        response = client.post(EVENTS_PATH, json={"events": events, "sent_at": now_iso()})
        assert response.status_code == 200 and response.json()["status"] == "ok", response.text

    yield send
    client.close()


def read_topic(bootstrap: str, topic: str, until, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Messages of `topic` from the start until `until(messages)` holds (or the deadline)."""

    async def run() -> list[dict[str, Any]]:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        found: list[dict[str, Any]] = []
        try:
            deadline = time.monotonic() + timeout_s
            while not until(found) and time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for record in records:
                        with contextlib.suppress(orjson.JSONDecodeError):  # other tests publish junk too
                            found.append(orjson.loads(record.value))
        finally:
            await consumer.stop()
        return found

    return asyncio.run(run())


def test_error_burst_alerts_counters_match_and_survive_a_kill(
    stream: Stream, post, kafka_bootstrap: str, webhook: WebhookReceiver
):
    sent = {"page_view": 0, "error": 0, "feedback": 0}

    def firing_now() -> list[str]:
        body = httpx.get(f"{stream.url}/live/{PROJECT}/alerts", timeout=10).json()
        assert body["project_id"] == PROJECT
        return [a["metric"] for a in body["firing"]]

    def send_until(done, views: int, errors: int, limit_s: float = 90.0) -> None:
        """Post batches until `done()` holds; the limit only bounds a hang (the worker's buckets are
        wall-clock seconds, so on a loaded machine the phases simply last longer)."""
        deadline = time.monotonic() + limit_s
        while not done():
            assert time.monotonic() < deadline, "the stream worker never reached the expected state"
            post([page_view() for _ in range(views)] + [error_event() for _ in range(errors)])
            sent["page_view"] += views
            sent["error"] += errors
            time.sleep(0.1)

    # Baseline: seven seconds at least (the warm-up is five 1-second buckets), each post well over the
    # per-bucket minimum of five events, so every bucket that holds a post is learned.
    baseline_until = time.monotonic() + 7.0
    send_until(lambda: time.monotonic() >= baseline_until, views=10, errors=0)
    assert firing_now() == []
    send_until(lambda: "error_rate" in firing_now(), views=4, errors=8)  # two thirds of the events fail
    firing = read_topic(
        kafka_bootstrap,
        topics.ALERTS,
        lambda found: any(a.get("project_id") == PROJECT and a.get("metric") == "error_rate" for a in found),
    )
    send_until(lambda: "error_rate" not in firing_now(), views=10, errors=0)
    post([feedback(5, "Love the new voice search, great job"), feedback(4, "Slow and awful checkout")])
    sent["feedback"] += 2

    alerts = read_topic(
        kafka_bootstrap,
        topics.ALERTS,
        lambda found: any(
            a.get("project_id") == PROJECT
            and a.get("metric") == "error_rate"
            and a.get("status") == "resolved"
            for a in found
        ),
    )
    error_alerts = [a for a in alerts if a.get("project_id") == PROJECT and a.get("metric") == "error_rate"]
    assert [a["status"] for a in error_alerts] == ["firing", "resolved"], error_alerts
    assert error_alerts[0]["alert_id"] == error_alerts[1]["alert_id"]
    # The firing bucket may hold only the start of the burst: it need only clear the +5-point guard.
    assert error_alerts[0]["observed"] >= error_alerts[0]["expected"] + 0.05
    assert any(a.get("metric") == "error_rate" for a in firing)

    def hooked() -> list[tuple[str, str]]:
        return [
            (b["pravis_alert"]["alert_id"], b["pravis_alert"]["status"])
            for b in list(webhook.bodies)
            if b["pravis_alert"]["project_id"] == PROJECT and b["pravis_alert"]["metric"] == "error_rate"
        ]

    services.wait_for(lambda: len(hooked()) == 2, 60, "both alerts on the webhook")
    assert hooked() == [(a["alert_id"], a["status"]) for a in error_alerts]
    assert all(b["text"] for b in webhook.bodies)  # what Slack shows
    assert PROJECT in httpx.get(f"{stream.url}/live/projects").json()["projects"]

    total = sum(sent.values())
    body = stream.wait_for_total(total)
    assert body["events"]["by_type"] == {k: v for k, v in sent.items() if v}
    assert body["errors"]["error_events"] == sent["error"]
    assert body["feedback"]["count"] == 2 and body["feedback"]["average_rating"] == 4.5
    assert abs(body["active_users"]["last_1h"] - total) <= 0.03 * total  # one anonymous user per event

    scored = read_topic(
        kafka_bootstrap,
        topics.FEEDBACK_SCORED,
        lambda found: len([s for s in found if s.get("project_id") == PROJECT]) >= 2,
    )
    labels = sorted(s["sentiment_label"] for s in scored if s.get("project_id") == PROJECT)
    assert labels == ["negative", "positive"]

    stream.process.kill()
    while_down = [page_view() for _ in range(25)]
    post(while_down)
    stream.start()
    after = [page_view() for _ in range(15)] + [error_event() for _ in range(5)]
    post(after)

    restored = stream.wait_for_total(total + 45)
    assert restored["events"]["total"] == total + 45
    assert restored["events"]["by_type"]["page_view"] == sent["page_view"] + 40
    assert restored["errors"]["error_events"] == sent["error"] + 5
    assert restored["feedback"]["count"] == 2
    minutes = httpx.get(f"{stream.url}/live/{PROJECT}/timeseries", params={"minutes": 5}).json()["minutes"]
    assert sum(m["events"] for m in minutes) == total + 45


def publish_alerts(bootstrap: str, alerts: list[Alert]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await producer.start()
        try:
            for alert in alerts:
                await producer.send_and_wait(topics.ALERTS, alert.to_json(), key=alert.alert_id.encode())
        finally:
            await producer.stop()

    asyncio.run(run())


def test_pravis_alerts_follow_prints_the_alerts(kafka_bootstrap: str):
    """`pravis alerts --follow --from-beginning --project P` prints P's alerts, and only P's, then keeps
    following; the alerts are this test's own, so it needs no other test to have made any."""
    project, other = f"follow-{secrets.token_hex(4)}", f"other-{secrets.token_hex(4)}"
    now = datetime.now(UTC)
    alert = Alert(
        alert_id=f"{project}:error_rate",
        status=AlertStatus.FIRING,
        severity=Severity.CRITICAL,
        project_id=project,
        metric="error_rate",
        observed=0.6,
        expected=0.01,
        window_start=now - timedelta(seconds=1),
        window_end=now,
        started_at=now,
    )
    resolved = alert.model_copy(update={"status": AlertStatus.RESOLVED, "resolved_at": now})
    publish_alerts(kafka_bootstrap, [alert, alert.model_copy(update={"project_id": other}), resolved])

    pravis = str(Path(sys.executable).with_name("pravis"))
    argv = [pravis, "alerts", "--follow", "--from-beginning", "--json", "--project", project]
    env = {**os.environ, "PRAVIS_KAFKA_BOOTSTRAP": kafka_bootstrap}
    follow = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follow.stdout], daemon=True).start()
    try:
        printed = []
        while len(printed) < 2:
            # The timeout only bounds a hang (a CLI that prints nothing); it is no claim about speed.
            line = lines.get(timeout=60)
            printed.append(json.loads(line))
        assert [(a["project_id"], a["alert_id"], a["status"]) for a in printed] == [
            (project, alert.alert_id, "firing"),
            (project, alert.alert_id, "resolved"),
        ]
        assert follow.poll() is None  # still following
    finally:
        follow.terminate()
        follow.wait(10)


def test_live_api_rejects_bad_parameters(stream: Stream):
    assert httpx.get(f"{stream.url}/live/{PROJECT}/summary", params={"window": "7d"}).status_code == 400
    assert httpx.get(f"{stream.url}/live/{PROJECT}/timeseries", params={"minutes": "x"}).status_code == 400
    unknown = httpx.get(f"{stream.url}/live/{uuid.uuid4()}/summary").json()
    assert unknown["events"]["total"] == 0
    assert "pravis_stream_events_total" in httpx.get(f"{stream.url}/metrics").text


def test_open_text_survey_answers_land_with_vaders_sentiment(
    stream: Stream, gateway_url: str, api_key: str, secret_key: str, loader, clickhouse_url: str
) -> None:
    """gateway → events → stream tier (scores each open-text answer) → `survey_answers.scored` → loader →
    `survey_answer_sentiment`, with the scores the vaderSentiment package itself gives the texts."""
    survey = f"stream-ux-{secrets.token_hex(3)}"
    definition = {
        "status": "running",
        "questions": [
            {"id": "nps", "type": "nps", "text": "Recommend us?"},
            {"id": "why", "type": "open_text", "text": "Why?", "required": False},
        ],
    }
    saved = httpx.put(
        f"{gateway_url}/api/v1/surveys/{survey}",
        json=definition,
        headers={"X-API-Key": secret_key},
        timeout=30,
    )
    assert saved.status_code == 201, saved.text
    try:
        answer_and_check(gateway_url, api_key, clickhouse_url, survey)
    finally:
        # A running survey without segments is every user's: stopped, it is not offered in other tests.
        stopped = httpx.put(
            f"{gateway_url}/api/v1/surveys/{survey}",
            json={**definition, "status": "stopped"},
            headers={"X-API-Key": secret_key},
            timeout=30,
        )
        assert stopped.status_code in (200, 201), stopped.text


def answer_and_check(gateway_url: str, api_key: str, clickhouse_url: str, survey: str) -> None:
    texts = {"u-love": "I love how fast search is now!", "u-hate": "Checkout keeps failing, I hate it."}
    events = [
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "survey_answered",
            "timestamp": now_iso(),
            "user_id": user,
            "survey_id": survey,
            "survey_version": 1,
            "survey_answers": [{"question_id": "nps", "value": 8}, {"question_id": "why", "text": text}],
        }
        for user, text in texts.items()
    ]
    response = httpx.post(
        f"{gateway_url}{EVENTS_PATH}", json={"events": events}, headers={"X-API-Key": api_key}, timeout=30
    )
    assert response.json()["status"] == "ok", response.text

    def stored() -> list[tuple]:
        return query_rows(
            clickhouse_url,
            "SELECT user_id, question_id, sentiment_score, sentiment_label FROM survey_answer_sentiment "
            "FINAL WHERE survey_id = {s:String} ORDER BY user_id",
            s=survey,
        )

    reference = SentimentIntensityAnalyzer()
    expected = []
    for user, text in sorted(texts.items()):
        compound = reference.polarity_scores(text)["compound"]
        label = "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
        expected.append((user, "why", compound, label))
    assert wait_until_equal(stored, expected, timeout_s=90) == expected
    assert {row[3] for row in expected} == {"positive", "negative"}
