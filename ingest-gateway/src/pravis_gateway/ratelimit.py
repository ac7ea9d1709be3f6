"""Per-key token buckets counted in events (pure; the caller passes the clock)."""

import math
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float
    burst: float
    tokens: float
    updated: float

    def take(self, amount: float, now: float) -> float:
        """Take `amount` tokens and return 0 if there are enough, else the seconds until there will be."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if amount <= self.tokens:
            self.tokens -= amount
            return 0.0
        # A batch larger than the whole burst can never fit: it waits as if the bucket were full.
        return (min(amount, self.burst) - self.tokens) / self.rate


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: float) -> None:
        self.rate, self.burst = rate_per_s, burst
        self._buckets: dict[str, TokenBucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def retry_after(self, key_id: str, events: int, now: float) -> int:
        """0 when the key may send `events` now, else whole seconds to wait (for the Retry-After header)."""
        if not self.enabled:
            return 0
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = TokenBucket(self.rate, self.burst, self.burst, now)
        wait = bucket.take(min(events, self.burst), now)
        return math.ceil(wait) if wait else 0
