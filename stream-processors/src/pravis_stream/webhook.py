"""Alert delivery to every configured sink, in the background, with the shared retry rule.

The Slack-compatible payload is what Slack's incoming webhooks accept (`text` plus a coloured attachment);
other tools that take Slack-compatible JSON (Mattermost, Rocket.Chat, Teams connectors in Slack mode) read the
same fields. The full alert rides along under `pravis_alert` for receivers that want the structured form. The
other sinks' payloads (Alertmanager, PagerDuty, the signed webhook) are `alert_sinks`'. The POST and its
retries are `pravis_schemas.webhook`'s; this module queues alerts per sink, so the detector never waits on a
receiver and a sink that is down delays no other, and reports each sink's health in `/metrics`.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from pravis_schemas.messages import Alert, AlertStatus, Severity
from pravis_schemas.webhook import Backoff, WebhookError, post_json_async
from prometheus_client import Counter, Gauge

from pravis_stream.alert_sinks import SilenceBook

log = structlog.get_logger("pravis_stream.webhook")

COLOURS = {Severity.CRITICAL: "#d7263d", Severity.WARNING: "#f4a261", Severity.INFO: "#457b9d"}
RESOLVED_COLOUR = "#2a9d8f"
QUEUE_LIMIT = 1000
"""Alerts waiting for delivery per sink; beyond this the oldest pending ones are dropped (and counted)."""
FIRST_RETRY_WAIT_S = 0.2

DELIVERIES = Counter(
    "pravis_stream_alert_deliveries_total",
    "Alert messages per sink: delivered, failed (tries ran out), refused (a 4xx), dropped (queue full)",
    ["sink", "outcome"],
)
SINK_UP = Gauge(
    "pravis_stream_alert_sink_up", "1 when the sink's last delivery got through, 0 when it failed", ["sink"]
)
PENDING = Gauge("pravis_stream_alert_sink_pending", "Alert messages waiting for delivery", ["sink"])
SILENCED = Counter(
    "pravis_stream_alerts_silenced_total", "Alert messages a silence held back from every sink", ["metric"]
)


def slack_payload(alert: Alert) -> dict[str, Any]:
    firing = alert.status is AlertStatus.FIRING
    labels = ", ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    title = f"[{alert.status.value.upper()}] {alert.project_id}: {alert.metric}" + (
        f" ({labels})" if labels else ""
    )
    return {
        "text": f"{title} — {alert.message}" if alert.message else title,
        "attachments": [
            {
                "color": COLOURS[alert.severity] if firing else RESOLVED_COLOUR,
                "title": title,
                "fields": [
                    {"title": "observed", "value": f"{alert.observed:.4g}", "short": True},
                    {"title": "expected", "value": f"{alert.expected:.4g}", "short": True},
                    {"title": "severity", "value": alert.severity.value, "short": True},
                    {"title": "started", "value": alert.started_at.isoformat(), "short": True},
                ],
                "ts": int((alert.resolved_at or alert.window_end).timestamp()),
            }
        ],
        "pravis_alert": alert.model_dump(mode="json"),
    }


@dataclass(frozen=True)
class Sink:
    """One receiver: where to POST and how an alert becomes its body (a JSON value, or bytes sent as they
    are) and headers at the time of sending."""

    kind: str
    url: str
    request: Callable[[Alert, datetime], tuple[Any, dict[str, str]]]
    resend_while_firing: bool = False
    """Alertmanager forgets a firing alert whose `endsAt` passed: it is sent again on every re-send tick."""

    @property
    def name(self) -> str:
        """The metric label: kind and host only, since webhook URLs often carry their secret in the path."""
        return f"{self.kind}:{urlsplit(self.url).hostname}"


def slack_sink(url: str) -> Sink:
    return Sink("slack", url, lambda alert, now: (slack_payload(alert), {}))


async def deliver(
    client: httpx.AsyncClient, sink: Sink, alert: Alert, now: datetime, backoff: Backoff
) -> str:
    """POST the alert to one sink; retry transport errors, 429 and 5xx. The outcome: `delivered`, `failed`
    (never got through) or `refused` (another 4xx, not retried)."""
    body, headers = sink.request(alert, now)
    try:
        await post_json_async(client, sink.url, body, backoff, headers)
    except WebhookError as exc:
        if exc.retryable:
            log.warning("alert delivery failed", sink=sink.name, alert=alert.alert_id, error=str(exc))
            return "failed"
        log.warning(
            "sink refused alert", sink=sink.name, status=exc.status, alert=alert.alert_id, error=str(exc)
        )
        return "refused"
    return "delivered"


class AlertSender:
    """Hands every alert that no silence holds back to each sink's queue; one task per sink delivers them.
    `clock` is injected so tests move time (silences end, `endsAt` moves) without waiting."""

    def __init__(
        self,
        sinks: list[Sink],
        silences: SilenceBook,
        clock: Callable[[], datetime],
        attempts: int,
        timeout_s: float,
        max_wait_s: float = 10.0,
    ) -> None:
        self.sinks, self.silences, self.clock = sinks, silences, clock
        self.backoff = Backoff(attempts, FIRST_RETRY_WAIT_S, max_wait_s)
        self._client = httpx.AsyncClient(timeout=timeout_s)
        self._queues: list[asyncio.Queue[Alert]] = [asyncio.Queue(QUEUE_LIMIT) for _ in sinks]
        self.names = [
            sink.name if [s.name for s in sinks].count(sink.name) == 1 else f"{sink.name}#{i}"
            for i, sink in enumerate(sinks)
        ]

    def submit(self, alert: Alert) -> bool:
        """Queue the alert for every sink; False when a silence holds it back."""
        return self._hand_off(alert, resend=False)

    @property
    def resends(self) -> bool:
        """Whether any sink wants firing alerts again while they fire."""
        return any(sink.resend_while_firing for sink in self.sinks)

    def resend(self, alert: Alert) -> bool:
        """Queue a still-firing alert again for the sinks that expect it (Alertmanager)."""
        return self._hand_off(alert, resend=True)

    def _hand_off(self, alert: Alert, resend: bool) -> bool:
        silence = self.silences.silencing(alert, self.clock())
        if silence is not None:
            SILENCED.labels(alert.metric).inc()
            log.info(
                "alert silenced", alert=alert.alert_id, status=alert.status.value, silence=silence.silence_id
            )
            return False
        for sink, name, queue in zip(self.sinks, self.names, self._queues, strict=True):
            if resend and not sink.resend_while_firing:
                continue
            if queue.full():
                dropped = queue.get_nowait()
                DELIVERIES.labels(name, "dropped").inc()
                log.warning("alert queue full, dropping oldest alert", sink=name, alert=dropped.alert_id)
            queue.put_nowait(alert)
            PENDING.labels(name).set(queue.qsize())
        return True

    async def run(self) -> None:
        await asyncio.gather(*(self._deliver_to(i) for i in range(len(self.sinks))))

    async def _deliver_to(self, index: int) -> None:
        sink, name, queue = self.sinks[index], self.names[index], self._queues[index]
        while True:
            alert = await queue.get()
            outcome = await deliver(self._client, sink, alert, self.clock(), self.backoff)
            DELIVERIES.labels(name, outcome).inc()
            SINK_UP.labels(name).set(1 if outcome == "delivered" else 0)
            PENDING.labels(name).set(queue.qsize())

    async def close(self) -> None:
        await self._client.aclose()
