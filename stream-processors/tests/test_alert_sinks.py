"""Alert sinks and silences: each payload against the receiver's published schema, deliveries to local
receivers that check schema and signature, and silences on an injected clock."""

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import jsonschema
import pytest
from pravis_schemas.messages import Alert, AlertStatus
from pravis_schemas.silences import ALERT_METRICS, Silence
from pravis_schemas.webhook import Backoff
from pravis_stream import alert_sinks
from pravis_stream.alert_sinks import Links, SilenceBook
from pravis_stream.app import configured_sinks
from pravis_stream.detector import Thresholds
from pravis_stream.settings import Settings
from pravis_stream.webhook import AlertSender, Sink, deliver
from prometheus_client import REGISTRY
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.receivers import Receiver
from tests.support.services import free_port

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LINKS = Links("https://docs.example/runbooks.md", "http://dash.example:8080/")
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123").decode()
FAST = Backoff(3, 0.001, 0.01)

FIRING = Alert(
    alert_id="shop-0123456789abcdef",
    status="firing",
    severity="critical",
    project_id="shop",
    metric="api_error_rate",
    labels={"endpoint": "/api/v1/cart"},
    observed=0.4,
    expected=0.01,
    window_start=T0,
    window_end=T0 + timedelta(seconds=5),
    started_at=T0,
    message="shop: api_error_rate endpoint=/api/v1/cart is 0.4, expected about 0.01 (z=9.0)",
)
RESOLVED = FIRING.model_copy(
    update={"status": AlertStatus.RESOLVED, "resolved_at": T0 + timedelta(minutes=3), "message": "resolved"}
)

# Alertmanager's OpenAPI (api/v2/openapi.yaml, v0.25): postableAlerts, with labelSet = map of strings.
LABEL_SET = {"type": "object", "additionalProperties": {"type": "string"}}
POSTABLE_ALERTS = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["labels"],
        "properties": {
            "labels": LABEL_SET,
            "annotations": LABEL_SET,
            "startsAt": {"type": "string", "format": "date-time"},
            "endsAt": {"type": "string", "format": "date-time"},
            "generatorURL": {"type": "string", "format": "uri"},
        },
        "additionalProperties": False,
    },
}
# PagerDuty Events API v2, "Send an alert event" / "Send a resolve event" (developer.pagerduty.com).
PAGERDUTY_EVENT = {
    "type": "object",
    "required": ["routing_key", "event_action"],
    "properties": {
        "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "maxLength": 255},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "properties": {
                "summary": {"type": "string", "maxLength": 1024},
                "source": {"type": "string"},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": {"type": "string", "format": "date-time"},
                "component": {"type": "string"},
                "group": {"type": "string"},
                "class": {"type": "string"},
                "custom_details": {"type": "object"},
            },
            "additionalProperties": False,
        },
        "images": {"type": "array"},
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["href"],
                "properties": {"href": {"type": "string", "format": "uri"}, "text": {"type": "string"}},
            },
        },
        "client": {"type": "string"},
        "client_url": {"type": "string", "format": "uri"},
    },
    "if": {"properties": {"event_action": {"const": "trigger"}}},
    "then": {"required": ["payload"]},
    "else": {"required": ["dedup_key"]},
    "additionalProperties": False,
}
ROUTING_KEY = "R0123456789abcdef0123456789abcde"
CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER


def test_alertmanager_alert_matches_the_api_and_says_when_it_ends():
    firing = alert_sinks.alertmanager_alert(FIRING, LINKS, T0 + timedelta(seconds=30), resend_interval_s=60)
    resolved = alert_sinks.alertmanager_alert(
        RESOLVED, LINKS, T0 + timedelta(minutes=4), resend_interval_s=60
    )
    jsonschema.validate([firing, resolved], POSTABLE_ALERTS, format_checker=CHECKER)
    labels = {
        "alertname": "PravisAnomaly",
        "project": "shop",
        "metric": "api_error_rate",
        "severity": "critical",
        "endpoint": "/api/v1/cart",
    }
    assert firing["labels"] == resolved["labels"] == labels  # one identity from fire to resolve
    assert datetime.fromisoformat(firing["startsAt"]) == T0
    assert datetime.fromisoformat(firing["endsAt"]) == T0 + timedelta(seconds=30 + 4 * 60)
    assert datetime.fromisoformat(resolved["endsAt"]) == T0 + timedelta(minutes=3)
    assert firing["annotations"]["runbook_url"] == "https://docs.example/runbooks.md#api_error_rate"
    assert (firing["annotations"]["observed"], firing["annotations"]["expected"]) == ("0.4", "0.01")
    assert firing["annotations"]["alert_id"] == FIRING.alert_id
    assert firing["generatorURL"] == (
        "http://dash.example:8080/live?project=shop&metric=api_error_rate&endpoint=%2Fapi%2Fv1%2Fcart"
    )


def test_pagerduty_events_trigger_then_resolve_with_the_alert_id():
    trigger = alert_sinks.pagerduty_event(FIRING, ROUTING_KEY, LINKS)
    resolve = alert_sinks.pagerduty_event(RESOLVED, ROUTING_KEY, LINKS)
    for event in (trigger, resolve):
        jsonschema.validate(event, PAGERDUTY_EVENT, format_checker=CHECKER)
    assert (trigger["event_action"], resolve["event_action"]) == ("trigger", "resolve")
    assert trigger["dedup_key"] == resolve["dedup_key"] == FIRING.alert_id
    assert trigger["payload"]["severity"] == "critical"
    assert trigger["payload"]["custom_details"]["observed"] == 0.4
    assert trigger["links"][0]["href"] == "https://docs.example/runbooks.md#api_error_rate"
    long = FIRING.model_copy(update={"labels": {"endpoint": "/x" * 1000}})
    jsonschema.validate(alert_sinks.pagerduty_event(long, ROUTING_KEY, LINKS), PAGERDUTY_EVENT)


def test_signed_request_verifies_with_the_standard_webhooks_library():
    now = datetime.now(UTC)
    body, headers = alert_sinks.signed_request(FIRING, alert_sinks.signing_key(SECRET), LINKS, now)
    payload = Webhook(SECRET).verify(body, headers)
    assert payload["type"] == "alert.firing"
    assert payload["data"]["alert_id"] == FIRING.alert_id
    assert headers["webhook-id"] == f"{FIRING.alert_id}.firing"
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"0.4", b"0.5"), headers)
    other = "whsec_" + base64.b64encode(b"another secret of 20b").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("0123456789abcdef0123", "starts with 'whsec_'"),
        ("whsec_not base64!", "not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "at least 16 bytes"),
    ],
)
def test_a_bad_signing_secret_is_refused_with_its_reason(secret, reason):
    with pytest.raises(ValueError, match=reason):
        alert_sinks.signing_key(secret)
    with pytest.raises(ValidationError, match=reason):
        Settings(stream_signed_webhook_urls=["http://h/x"], stream_signed_webhook_secret=secret)
    with pytest.raises(ValidationError, match="needs PRAVIS_STREAM_SIGNED_WEBHOOK_SECRET"):
        Settings(stream_signed_webhook_urls=["http://h/x"])


def test_the_settings_pick_any_combination_of_sinks():
    assert configured_sinks(Settings()) == []
    settings = Settings(
        stream_webhook_urls=["https://hooks.slack.example/T/B/secret-path"],
        stream_alertmanager_urls=["http://am-1:9093", "http://am-2:9093/"],
        stream_pagerduty_routing_key=ROUTING_KEY,
        stream_signed_webhook_urls=["https://receiver.example/hook"],
        stream_signed_webhook_secret=SECRET,
    )
    sinks = configured_sinks(settings)
    assert [(s.kind, s.url, s.resend_while_firing) for s in sinks] == [
        ("slack", "https://hooks.slack.example/T/B/secret-path", False),
        ("alertmanager", "http://am-1:9093/api/v2/alerts", True),
        ("alertmanager", "http://am-2:9093/api/v2/alerts", True),
        ("pagerduty", "https://events.pagerduty.com/v2/enqueue", False),
        ("signed_webhook", "https://receiver.example/hook", False),
    ]
    assert sinks[0].name == "slack:hooks.slack.example"  # the secret path stays out of /metrics


@pytest.fixture
def receiver(request) -> Iterator[Receiver]:
    server = Receiver(request.param, unauthorized=(WebhookVerificationError,))
    try:
        yield server
    finally:
        server.close()


def pagerduty_check(body: bytes, headers: dict[str, str]) -> dict:
    event = json.loads(body)
    jsonschema.validate(event, PAGERDUTY_EVENT, format_checker=CHECKER)
    return event


def signature_check(body: bytes, headers: dict[str, str]) -> dict:
    return Webhook(SECRET).verify(body, headers)


@pytest.mark.parametrize("receiver", [pagerduty_check], indirect=True)
async def test_pagerduty_receiver_takes_the_trigger_and_the_resolve(receiver: Receiver):
    sink = configured_sinks(
        Settings(stream_pagerduty_routing_key=ROUTING_KEY, stream_pagerduty_url=receiver.url)
    )
    async with httpx.AsyncClient(timeout=5) as client:
        for alert in (FIRING, RESOLVED):
            assert await deliver(client, sink[0], alert, T0, FAST) == "delivered"
    assert receiver.refused == []
    assert [(e["event_action"], e["dedup_key"]) for e in receiver.accepted] == [
        ("trigger", FIRING.alert_id),
        ("resolve", FIRING.alert_id),
    ]


@pytest.mark.parametrize("receiver", [signature_check], indirect=True)
async def test_signed_webhook_receiver_verifies_the_signature(receiver: Receiver):
    good = configured_sinks(
        Settings(stream_signed_webhook_urls=[receiver.url], stream_signed_webhook_secret=SECRET)
    )[0]
    wrong_secret = "whsec_" + base64.b64encode(b"not the receiver's secret").decode()
    bad = configured_sinks(
        Settings(stream_signed_webhook_urls=[receiver.url], stream_signed_webhook_secret=wrong_secret)
    )[0]
    async with httpx.AsyncClient(timeout=5) as client:
        assert await deliver(client, good, FIRING, datetime.now(UTC), FAST) == "delivered"
        assert await deliver(client, bad, FIRING, datetime.now(UTC), FAST) == "refused"
    assert [a["data"]["alert_id"] for a in receiver.accepted] == [FIRING.alert_id]
    assert receiver.refused == ["No matching signature found"]


def silence(silence_id: str = "s1", hours: float = 1, **overrides) -> Silence:
    fields = {
        "silence_id": silence_id,
        "project_id": "shop",
        "metric": "api_error_rate",
        "starts_at": T0,
        "ends_at": T0 + timedelta(hours=hours),
        "comment": "deploy of the cart service",
        **overrides,
    }
    return Silence(**fields)


def test_a_silence_holds_back_matching_series_until_it_ends():
    book = SilenceBook()
    book.add(silence(labels={"endpoint": "/api/v1/cart"}), T0)
    other_endpoint = FIRING.model_copy(update={"labels": {"endpoint": "/api/v1/pay"}})
    other_project = FIRING.model_copy(update={"project_id": "blog"})
    assert book.silencing(FIRING, T0 - timedelta(seconds=1)) is None  # not started yet
    assert book.silencing(FIRING, T0).silence_id == "s1"
    assert book.silencing(FIRING, T0 + timedelta(minutes=59, seconds=59)).silence_id == "s1"
    assert book.silencing(other_endpoint, T0 + timedelta(minutes=1)) is None
    assert book.silencing(other_project, T0 + timedelta(minutes=1)) is None
    assert book.silencing(FIRING, T0 + timedelta(hours=1)) is None  # the end is exclusive
    assert len(book) == 0  # ended silences are forgotten


def test_expiring_a_silence_is_a_later_record_of_the_same_id():
    book = SilenceBook()
    book.add(silence(), T0)
    book.add(silence("s2", metric="latency_p95_ms"), T0)
    book.add(silence(ends_at=T0 + timedelta(minutes=10)), T0 + timedelta(minutes=10))
    assert book.silencing(FIRING, T0 + timedelta(minutes=10)) is None
    assert len(book) == 1
    book.add(silence("s3"), T0)
    book.add(silence("s3", metric="traffic_drop"), T0)  # the latest record of an id replaces it whole
    assert book.silencing(FIRING, T0 + timedelta(minutes=20)) is None
    assert len(book) == 2
    with pytest.raises(ValidationError, match="ends_at must not be before starts_at"):
        silence(ends_at=T0 - timedelta(seconds=1))


def wait_until(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.mark.parametrize("receiver", [pagerduty_check], indirect=True)
async def test_a_silenced_alert_reaches_no_sink_and_the_silence_expires_on_time(receiver: Receiver):
    clock = [T0 + timedelta(minutes=5)]
    book = SilenceBook()
    book.add(silence(), clock[0])
    sink = configured_sinks(
        Settings(stream_pagerduty_routing_key=ROUTING_KEY, stream_pagerduty_url=receiver.url)
    )
    sender = AlertSender(sink, book, lambda: clock[0], attempts=3, timeout_s=5, max_wait_s=0.01)
    task = asyncio.create_task(sender.run())
    try:
        assert sender.submit(FIRING) is False
        clock[0] = T0 + timedelta(hours=1)  # the silence ends
        assert sender.submit(RESOLVED) is True
        await asyncio.to_thread(wait_until, lambda: receiver.accepted)
    finally:
        task.cancel()
        await sender.close()
    # One queue per sink, in order: had the silenced trigger been queued, it would have arrived first.
    assert [e["event_action"] for e in receiver.accepted] == ["resolve"]


@pytest.mark.parametrize("receiver", [pagerduty_check], indirect=True)
async def test_a_sink_that_is_down_shows_in_the_metrics_and_the_others_still_deliver(receiver: Receiver):
    down = Sink("pagerduty", f"http://127.0.0.1:{free_port()}/closed", lambda alert, now: ({}, {}))
    up = configured_sinks(
        Settings(stream_pagerduty_routing_key=ROUTING_KEY, stream_pagerduty_url=receiver.url)
    )
    sender = AlertSender([down, *up], SilenceBook(), lambda: T0, attempts=3, timeout_s=1, max_wait_s=0.01)
    assert sender.names == ["pagerduty:127.0.0.1#0", "pagerduty:127.0.0.1#1"]

    def sample(name: str, sink: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"sink": sink, **labels})

    failed_before = (
        sample("pravis_stream_alert_deliveries_total", "pagerduty:127.0.0.1#0", outcome="failed") or 0
    )
    task = asyncio.create_task(sender.run())
    try:
        sender.submit(FIRING)
        await asyncio.to_thread(
            wait_until,
            lambda: (
                sample("pravis_stream_alert_sink_up", "pagerduty:127.0.0.1#1") == 1
                and sample("pravis_stream_alert_sink_up", "pagerduty:127.0.0.1#0") == 0
            ),
        )
    finally:
        task.cancel()
        await sender.close()
    assert [e["event_action"] for e in receiver.accepted] == ["trigger"]
    failed = sample("pravis_stream_alert_deliveries_total", "pagerduty:127.0.0.1#0", outcome="failed")
    assert failed == failed_before + 1


def test_silences_name_exactly_the_series_the_detector_judges():
    assert set(Thresholds().configs()) == set(ALERT_METRICS)


async def test_only_alertmanager_gets_firing_alerts_again_with_a_later_end():
    def alertmanager_check(body: bytes, headers: dict[str, str]) -> list:
        alerts = json.loads(body)
        jsonschema.validate(alerts, POSTABLE_ALERTS, format_checker=CHECKER)
        return alerts

    alertmanager, pagerduty = Receiver(alertmanager_check), Receiver(pagerduty_check)
    settings = Settings(
        stream_alertmanager_urls=[alertmanager.url.removesuffix("/hook")],
        stream_alertmanager_resend_s=60,
        stream_pagerduty_routing_key=ROUTING_KEY,
        stream_pagerduty_url=pagerduty.url,
    )
    clock = [T0]
    sender = AlertSender(configured_sinks(settings), SilenceBook(), lambda: clock[0], attempts=3, timeout_s=5)
    assert sender.resends
    task = asyncio.create_task(sender.run())
    try:
        sender.submit(FIRING)
        await asyncio.to_thread(wait_until, lambda: len(alertmanager.accepted) == 1 and pagerduty.accepted)
        clock[0] = T0 + timedelta(minutes=1)
        sender.resend(FIRING)
        await asyncio.to_thread(wait_until, lambda: len(alertmanager.accepted) == 2)
        sender.submit(
            RESOLVED
        )  # queued behind nothing for PagerDuty: had the resend gone there, it came first
        await asyncio.to_thread(wait_until, lambda: len(pagerduty.accepted) == 2)
    finally:
        task.cancel()
        await sender.close()
        alertmanager.close()
        pagerduty.close()
    ends = [datetime.fromisoformat(batch[0]["endsAt"]) for batch in alertmanager.accepted]
    # Firing: four re-send intervals after each send; resolved: the resolve time.
    assert ends == [T0 + timedelta(minutes=4), T0 + timedelta(minutes=5), T0 + timedelta(minutes=3)]
    assert [e["event_action"] for e in pagerduty.accepted] == ["trigger", "resolve"]
    pagerduty_only = configured_sinks(Settings(stream_pagerduty_routing_key=ROUTING_KEY))
    assert not AlertSender(pagerduty_only, SilenceBook(), lambda: T0, attempts=1, timeout_s=1).resends
