"""The rollup worker's only outgoing HTTP: notifications to a configurable webhook (Slack-compatible JSON).

The standard library's urllib is enough for one small POST a week; tenacity retries what is worth retrying.
"""

import json
import urllib.error
import urllib.request
from typing import Any

from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

ATTEMPTS = 4
TIMEOUT_S = 10.0


class WebhookError(Exception):
    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"webhook answered {status}: {message}" if status else f"webhook failed: {message}")
        self.status = status


def _retryable(exc: BaseException) -> bool:
    """Network failures, 429 and 5xx are worth another try; any other answer will not change."""
    return isinstance(exc, WebhookError) and (exc.status is None or exc.status == 429 or exc.status >= 500)


@retry(
    retry=retry_if_exception(_retryable),
    stop=stop_after_attempt(ATTEMPTS),
    wait=wait_exponential(multiplier=0.5, max=8),
    reraise=True,
)
def notify(url: str, payload: dict[str, Any]) -> int:
    """POST `payload` as JSON; returns the 2xx status, raises WebhookError when it finally fails."""
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "pravis-rollups"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise WebhookError(exc.code, exc.read(500).decode(errors="replace")) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise WebhookError(None, str(exc)) from None
