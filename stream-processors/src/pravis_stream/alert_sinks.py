"""What each alert sink receives, and which alerts silences hold back (pure, no I/O).

Beside the Slack-compatible webhook (`webhook.slack_payload`), an alert can go to:

- Prometheus Alertmanager, `POST /api/v2/alerts` (its `postableAlerts`): labels route and group it, its
  identity is the label set (so the alert id is an annotation, not a label), `endsAt` in the future keeps it
  firing and is renewed by re-sending it while it fires, as Prometheus does; a resolve is the same labels with
  `endsAt` = the resolve time.
- PagerDuty Events API v2 (`/v2/enqueue`): `trigger` then `resolve` with `dedup_key` = the alert id.
- A generic JSON webhook signed as the Standard Webhooks specification says (standardwebhooks.com):
  HMAC-SHA256 over `id.timestamp.body` with a `whsec_` secret, so receivers verify it with any of its
  libraries.

Every payload links the runbook section of the alert's metric (docs/runbooks.md as the dashboards serve it)
and the live dashboard of its project, filtered to its series.
"""

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
from pravis_schemas.messages import Alert, AlertStatus, Severity
from pravis_schemas.silences import Silence

ALERTNAME = "PravisAnomaly"
RESEND_ENDS_FACTOR = 4
"""A firing alert sent to Alertmanager ends this many re-send intervals later unless re-sent (Prometheus uses
the same factor), so a worker that dies leaves no alert firing forever, and one missed re-send changes
nothing."""
PAGERDUTY_SUMMARY_CHARS = 1024
"""PagerDuty refuses a longer `payload.summary`."""
PAGERDUTY_SEVERITY = {Severity.CRITICAL: "critical", Severity.WARNING: "warning", Severity.INFO: "info"}
SIGNED_SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class Links:
    runbook_url: str
    """The runbooks page (by default the dashboards' `/runbooks`); each metric's section is the anchor
    `#<metric>`."""
    dashboard_url: str
    """The dashboards' base URL; the live page takes `project`, `metric` and the series' labels."""

    def runbook(self, alert: Alert) -> str:
        return f"{self.runbook_url}#{alert.metric}"

    def dashboard(self, alert: Alert) -> str:
        query = {"project": alert.project_id, "metric": alert.metric, **alert.labels}
        return f"{self.dashboard_url.rstrip('/')}/live?{urlencode(query)}"


def summary(alert: Alert) -> str:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    series = f"{alert.metric} ({labels})" if labels else alert.metric
    return f"{alert.project_id}: {series} observed {alert.observed:.4g}, expected {alert.expected:.4g}"


def alertmanager_alert(alert: Alert, links: Links, now: datetime, resend_interval_s: float) -> dict[str, Any]:
    """One `postableAlert`; `now` and the re-send interval set a firing alert's `endsAt`."""
    if alert.status is AlertStatus.FIRING:
        ends_at = now + timedelta(seconds=RESEND_ENDS_FACTOR * resend_interval_s)
    else:
        ends_at = alert.resolved_at or alert.window_end
    return {
        "labels": {
            "alertname": ALERTNAME,
            "project": alert.project_id,
            "metric": alert.metric,
            "severity": alert.severity.value,
            **alert.labels,
        },
        "annotations": {
            "summary": summary(alert),
            "description": alert.message,
            "observed": f"{alert.observed:.6g}",
            "expected": f"{alert.expected:.6g}",
            "runbook_url": links.runbook(alert),
            "alert_id": alert.alert_id,
        },
        "startsAt": alert.started_at.isoformat(),
        "endsAt": ends_at.isoformat(),
        "generatorURL": links.dashboard(alert),
    }


def pagerduty_event(alert: Alert, routing_key: str, links: Links) -> dict[str, Any]:
    """An Events API v2 event: `trigger` for a firing alert, `resolve` for its resolve (same `dedup_key`)."""
    if alert.status is AlertStatus.RESOLVED:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": alert.alert_id}
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": alert.alert_id,
        "payload": {
            "summary": summary(alert)[:PAGERDUTY_SUMMARY_CHARS],
            "source": f"pravis/{alert.project_id}",
            "severity": PAGERDUTY_SEVERITY[alert.severity],
            "timestamp": alert.started_at.isoformat(),
            "component": alert.metric,
            "group": alert.project_id,
            "class": "anomaly",
            "custom_details": {
                "observed": alert.observed,
                "expected": alert.expected,
                "labels": alert.labels,
                "window_start": alert.window_start.isoformat(),
                "window_end": alert.window_end.isoformat(),
                "message": alert.message,
            },
        },
        "links": [
            {"href": links.runbook(alert), "text": "Runbook"},
            {"href": links.dashboard(alert), "text": "Live dashboard"},
        ],
        "client": "Pravis",
        "client_url": links.dashboard(alert),
    }


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: base64 after the `whsec_` prefix. Raises ValueError."""
    if not secret.startswith(SIGNED_SECRET_PREFIX):
        raise ValueError(f"a signing secret starts with {SIGNED_SECRET_PREFIX!r} (then base64)")
    try:
        key = base64.b64decode(secret.removeprefix(SIGNED_SECRET_PREFIX), validate=True)
    except ValueError:
        raise ValueError("the signing secret after 'whsec_' is not base64") from None
    if len(key) < 16:
        raise ValueError("the signing secret must hold at least 16 bytes")
    return key


def signed_request(alert: Alert, key: bytes, links: Links, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The body and the `webhook-id`/`webhook-timestamp`/`webhook-signature` headers. The id is the same for
    every delivery of one alert message, so a receiver can drop a retry it already took."""
    body = orjson.dumps(
        {
            "type": f"alert.{alert.status.value}",
            "timestamp": now.isoformat(),
            "data": {
                **alert.model_dump(mode="json"),
                "runbook_url": links.runbook(alert),
                "dashboard_url": links.dashboard(alert),
            },
        }
    )
    message_id = f"{alert.alert_id}.{alert.status.value}"
    timestamp = str(int(now.timestamp()))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
    }
    return body, headers


class SilenceBook:
    """The silences not yet ended, from the `alerts.silences` records in topic order; the latest record of an
    id wins. Indexed by project and metric, so an alert is checked against its own series' silences only
    (`python -m bench.alert_sinks`); ended silences are forgotten, so the book holds what people silenced for
    now."""

    def __init__(self) -> None:
        self._by_series: dict[tuple[str, str], dict[str, Silence]] = {}
        self._series_of: dict[str, tuple[str, str]] = {}

    def add(self, silence: Silence, now: datetime) -> None:
        previous = self._series_of.pop(silence.silence_id, None)
        if previous is not None:
            self._by_series[previous].pop(silence.silence_id)
        if silence.ends_at > now:
            series = (silence.project_id, silence.metric)
            self._by_series.setdefault(series, {})[silence.silence_id] = silence
            self._series_of[silence.silence_id] = series
        for series in [key for key, silences in self._by_series.items() if not silences]:
            del self._by_series[series]

    def silencing(self, alert: Alert, now: datetime) -> Silence | None:
        """The first active silence that holds this alert back, if any."""
        silences = self._by_series.get((alert.project_id, alert.metric))
        if not silences:
            return None
        for ended in [s for s in silences.values() if s.ends_at <= now]:
            del silences[ended.silence_id]
            del self._series_of[ended.silence_id]
        return next((s for s in silences.values() if s.active(now) and s.matches(alert)), None)

    def __len__(self) -> int:
        return len(self._series_of)
