"""The rollup worker's only outgoing HTTP: notifications to a configurable webhook (Slack-compatible JSON).

The POST and its retry rule are `pravis_schemas.webhook`'s; this module picks the worker's timeout, backoff
and User-Agent. A refused or undelivered notification raises `pravis_schemas.webhook.WebhookError`.
"""

from typing import Any

import httpx
from pravis_schemas.webhook import Backoff, post_json

TIMEOUT_S = 10.0
BACKOFF = Backoff(attempts=4, first_wait_s=0.5, max_wait_s=8)
HEADERS = {"User-Agent": "pravis-rollups"}


def notify(url: str, payload: dict[str, Any]) -> int:
    """POST `payload` as JSON; returns the receiver's status once it took it."""
    with httpx.Client(timeout=TIMEOUT_S) as client:
        return post_json(client, url, payload, BACKOFF, HEADERS)
