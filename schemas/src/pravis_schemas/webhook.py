"""POSTing JSON to a webhook with the one retry rule every Pravis sender follows.

Transport errors (no connection, a timeout), 429 and 5xx are retried with exponential backoff; any other
answer of 400 or more is final at once, since the receiver will give it again. `post_json` is the blocking
form (the rollup workers' reports), `post_json_async` the asyncio form (the stream tier's alerts). Both take
the caller's httpx client, which owns timeouts and connections, and any JSON body and headers: a sink only
formats its payload (Slack's, or any other receiver's) and picks its backoff. A body given as bytes is sent
as it is, for receivers that verify a signature over the exact bytes.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

ERROR_BODY_CHARS = 500
"""How much of a refusing receiver's answer `WebhookError` keeps, enough for its reason."""


@dataclass(frozen=True)
class Backoff:
    attempts: int
    """Tries in all, the first one included."""
    first_wait_s: float
    """The wait after the first failure; each following wait doubles it."""
    max_wait_s: float
    """No wait between two tries is longer."""


class WebhookError(Exception):
    """The POST did not get through: `status` is the receiver's last answer, None when it never answered."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"webhook answered {status}: {message}" if status else f"webhook failed: {message}")
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.status is None or is_retryable_status(self.status)


def is_retryable_status(status: int) -> bool:
    """429 (slow down) and 5xx (the receiver's own trouble) may pass later; other refusals will not."""
    return status == 429 or status >= 500


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, WebhookError) and exc.retryable


def _policy(backoff: Backoff) -> dict[str, Any]:
    return {
        "stop": stop_after_attempt(backoff.attempts),
        "wait": wait_exponential(multiplier=backoff.first_wait_s, max=backoff.max_wait_s),
        "retry": retry_if_exception(_retryable),
        "reraise": True,
    }


def _status_of(response: httpx.Response) -> int:
    if response.status_code >= 400:
        raise WebhookError(response.status_code, response.text[:ERROR_BODY_CHARS])
    return response.status_code


def post_json(
    client: httpx.Client,
    url: str,
    body: Any,
    backoff: Backoff,
    headers: Mapping[str, str] | None = None,
) -> int:
    """POST `body` as JSON until the receiver takes it; returns its status, raises `WebhookError` when the
    receiver refused it or the tries ran out."""
    return Retrying(**_policy(backoff))(_post_once, client, url, body, headers)


async def post_json_async(
    client: httpx.AsyncClient,
    url: str,
    body: Any,
    backoff: Backoff,
    headers: Mapping[str, str] | None = None,
) -> int:
    """`post_json` for asyncio: the waits between tries do not block the event loop."""
    return await AsyncRetrying(**_policy(backoff))(_post_once_async, client, url, body, headers)


def _request(body: Any, headers: Mapping[str, str] | None) -> dict[str, Any]:
    if isinstance(body, bytes):
        return {"content": body, "headers": {"Content-Type": "application/json", **(headers or {})}}
    return {"json": body, "headers": headers}


def _post_once(client: httpx.Client, url: str, body: Any, headers: Mapping[str, str] | None) -> int:
    try:
        response = client.post(url, **_request(body, headers))
    except httpx.TransportError as exc:
        raise WebhookError(None, str(exc) or type(exc).__name__) from None
    return _status_of(response)


async def _post_once_async(
    client: httpx.AsyncClient, url: str, body: Any, headers: Mapping[str, str] | None
) -> int:
    try:
        response = await client.post(url, **_request(body, headers))
    except httpx.TransportError as exc:
        raise WebhookError(None, str(exc) or type(exc).__name__) from None
    return _status_of(response)
