"""Alert delivery to Slack-compatible incoming webhooks, in the background, with the shared retry rule.

The payload is what Slack's incoming webhooks accept (`text` plus a coloured attachment); other tools that
take Slack-compatible JSON (Mattermost, Rocket.Chat, Teams connectors in Slack mode) read the same fields.
The full alert rides along under `pravis_alert` for receivers that want the structured form. The POST and
its retries are `pravis_schemas.webhook`'s; this module formats the payload and queues alerts so the detector
never waits on a receiver.
"""

import asyncio
from typing import Any

import httpx
import structlog
from pravis_schemas.messages import Alert, AlertStatus, Severity
from pravis_schemas.webhook import Backoff, WebhookError, post_json_async

log = structlog.get_logger("pravis_stream.webhook")

COLOURS = {Severity.CRITICAL: "#d7263d", Severity.WARNING: "#f4a261", Severity.INFO: "#457b9d"}
RESOLVED_COLOUR = "#2a9d8f"
QUEUE_LIMIT = 1000
"""Alerts waiting for delivery; beyond this the oldest pending ones are dropped (and logged)."""
FIRST_RETRY_WAIT_S = 0.2


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


async def deliver(
    client: httpx.AsyncClient, url: str, alert: Alert, attempts: int = 5, max_wait_s: float = 10.0
) -> bool:
    """POST the alert to one webhook; retry transport errors, 429 and 5xx. False when it never got through
    or the receiver refused it (other 4xx are not retried)."""
    backoff = Backoff(attempts, FIRST_RETRY_WAIT_S, max_wait_s)
    try:
        await post_json_async(client, url, slack_payload(alert), backoff)
    except WebhookError as exc:
        if exc.retryable:
            log.warning(
                "webhook delivery failed", url=url, alert=alert.alert_id, attempts=attempts, error=str(exc)
            )
        else:
            log.warning("webhook refused alert", url=url, status=exc.status, alert=alert.alert_id)
        return False
    return True


class WebhookSender:
    """Delivers alerts in the background so the detector never waits on a slow receiver."""

    def __init__(self, urls: list[str], attempts: int, timeout_s: float) -> None:
        self.urls, self.attempts = urls, attempts
        self._client = httpx.AsyncClient(timeout=timeout_s)
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(QUEUE_LIMIT)
        self.delivered = self.failed = 0

    def submit(self, alert: Alert) -> None:
        if not self.urls:
            return
        if self._queue.full():
            dropped = self._queue.get_nowait()
            log.warning("webhook queue full, dropping oldest alert", alert=dropped.alert_id)
        self._queue.put_nowait(alert)

    async def run(self) -> None:
        while True:
            alert = await self._queue.get()
            results = await asyncio.gather(
                *(deliver(self._client, url, alert, self.attempts) for url in self.urls)
            )
            self.delivered += sum(results)
            self.failed += len(results) - sum(results)

    async def close(self) -> None:
        await self._client.aclose()
