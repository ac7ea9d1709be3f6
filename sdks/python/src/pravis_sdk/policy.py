"""Delivery limits and the retry matrix: which gateway answers are retried, and how long to wait.

Pure functions, no I/O. The JavaScript SDK (`sdks/js/src/policy.js`) implements the same matrix and numbers;
change both together.
"""

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum

MAX_EVENT_BYTES = 32 * 1024
"""The gateway rejects an event whose JSON is larger; the SDK drops (and reports) it before queueing."""
MAX_BATCH_EVENTS = 100
"""Events per request when a backlog drains; the gateway accepts 500."""
MAX_BATCH_BYTES = 512 * 1024
"""Body bytes per request; half the gateway's 1 MiB so envelope and escaping never push a batch over."""
MAX_QUEUE_SIZE = 10_000
"""Events held in memory while the gateway is slow or down; beyond it new events are dropped and counted."""

FLUSH_AT = 10
FLUSH_INTERVAL_S = 10.0
"""Product guide: a queue flushed every 10 s or at 10 events."""

MAX_RETRIES = 8
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 30.0
"""Exponential backoff 1, 2, 4, ... 30 s with jitter: eight retries span about three minutes."""
MAX_RETRY_AFTER_S = 300.0
"""A larger Retry-After is clamped, so a misconfigured proxy cannot park a client for hours."""
RETRY_AFTER_JITTER = 0.1
"""Up to 10 % added to Retry-After, so clients told the same delay do not come back in lockstep."""


class Verdict(Enum):
    ACCEPTED = "accepted"
    """2xx: the gateway took the batch (a `partial` answer lists the events it refused)."""
    RETRY = "retry"
    """408, 429, 5xx or no answer at all: send the same events again later."""
    SPLIT = "split"
    """413: the batch is too large; send it in halves (a single event that is too large is dropped)."""
    DROP = "drop"
    """Any other status: the request itself is wrong (bad key, malformed body); retrying cannot help."""


def classify(status: int | None) -> Verdict:
    """The retry matrix; `None` means the request never got an answer (connection error, timeout)."""
    if status is None or status in (408, 429) or 500 <= status <= 599:
        return Verdict.RETRY
    if 200 <= status <= 299:
        return Verdict.ACCEPTED
    if status == 413:
        return Verdict.SPLIT
    return Verdict.DROP


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date), clamped to
    `MAX_RETRY_AFTER_S`; `None` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = MAX_RETRIES
    base_s: float = BACKOFF_BASE_S
    cap_s: float = BACKOFF_CAP_S

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay before retry number `attempt` (0-based): exponential, capped, "equal jitter" (between half
        and all of the exponential step, so the delay never collapses to zero)."""
        step = min(self.cap_s, self.base_s * 2**attempt)
        return step / 2 + (rng or random).random() * step / 2

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None = None) -> float:
        """Wait before the next try: never sooner than the server's Retry-After, plus a little jitter."""
        backoff = self.backoff(attempt, rng)
        if retry_after is None:
            return backoff
        return max(retry_after, backoff) + (rng or random).random() * RETRY_AFTER_JITTER * retry_after
