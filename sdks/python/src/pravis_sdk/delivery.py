"""Delivery of one batch as a sans-I/O generator, shared by the thread and the asyncio clients.

`deliver(items, policy)` yields `Send(items)` (the driver posts them and sends back a `Reply`) and
`Sleep(seconds)` (the driver waits and sends back `None`, or `GIVE_UP` when it is shutting down), and
returns an `Outcome`: how many events the gateway accepted, which it rejected and why, which the SDK dropped.
Items are the events' JSON texts; the body is assembled around them with a fresh `sent_at` per attempt,
which the gateway uses for clock-skew correction.
"""

import gzip as gzip_lib
import json
import random
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pravis_sdk.policy import RetryPolicy, Verdict, classify, parse_retry_after


@dataclass(frozen=True)
class Send:
    items: Sequence[bytes]


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Reply:
    """The gateway's answer; `status=None` when there was none (connection refused, timeout)."""

    status: int | None
    body: bytes = b""
    retry_after: str | None = None
    error: str | None = None


GIVE_UP = object()
"""Sent into the generator instead of `None` after a `Sleep` to abandon the remaining events."""


@dataclass
class Outcome:
    accepted: int = 0
    rejected: list[tuple[bytes, str]] = field(default_factory=list)
    """Events the gateway refused as invalid, with its reason; never retried."""
    dropped: list[tuple[bytes, str, str]] = field(default_factory=list)
    """Events the SDK gave up on: (event, code, message); codes `http_<status>`, `retries_exhausted`,
    `shutdown`."""

    def add(self, other: "Outcome") -> None:
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.dropped += other.dropped


Step = Generator[Send | Sleep, Reply | object | None, Outcome]


def encode_body(items: Sequence[bytes], sent_at: datetime | None = None, compress: bool = False) -> bytes:
    """`{"events": [...], "sent_at": ...}` from already-encoded events, gzipped when `compress`."""
    stamp = (sent_at or datetime.now(UTC)).isoformat(timespec="milliseconds")
    body = b'{"events":[' + b",".join(items) + b'],"sent_at":"' + stamp.encode() + b'"}'
    return gzip_lib.compress(body, compresslevel=6) if compress else body


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _reason(reply: Reply) -> str:
    if reply.status is None:
        return f"no answer: {reply.error or 'connection failed'}"
    data = _json(reply.body)
    detail = data.get("error") or data.get("detail") or reply.body[:200].decode(errors="replace")
    return f"HTTP {reply.status}: {detail}"


def _rejected(count: int, data: dict[str, Any]) -> dict[int, str]:
    """Index → reason from a `rejected: [{index, error}]` answer."""
    out = {}
    for entry in data.get("rejected") or []:
        index = entry.get("index") if isinstance(entry, dict) else None
        if isinstance(index, int) and 0 <= index < count:
            out[index] = str(entry.get("error", ""))
    return out


def deliver(items: Sequence[bytes], policy: RetryPolicy, rng: random.Random | None = None) -> Step:
    """Send `items` until the gateway accepts them, refuses them for good, or retries run out."""
    outcome = Outcome()
    attempt = 0
    while True:
        reply = yield Send(items)
        assert isinstance(reply, Reply)
        verdict = classify(reply.status)
        if verdict is Verdict.ACCEPTED:
            rejected = _rejected(len(items), _json(reply.body))
            outcome.accepted += len(items) - len(rejected)
            outcome.rejected += [(items[i], error) for i, error in sorted(rejected.items())]
            return outcome
        if verdict is Verdict.SPLIT:
            if len(items) == 1:
                outcome.dropped.append((items[0], "http_413", _reason(reply)))
                return outcome
            half = len(items) // 2
            outcome.add((yield from deliver(items[:half], policy, rng)))
            outcome.add((yield from deliver(items[half:], policy, rng)))
            return outcome
        if verdict is Verdict.DROP:
            rejected = _rejected(len(items), _json(reply.body)) if reply.status == 400 else {}
            for index, item in enumerate(items):
                if index in rejected:
                    outcome.rejected.append((item, rejected[index]))
                else:
                    outcome.dropped.append((item, f"http_{reply.status}", _reason(reply)))
            return outcome
        if attempt >= policy.max_retries:
            reason = f"gave up after {attempt + 1} attempts; last {_reason(reply)}"
            outcome.dropped += [(item, "retries_exhausted", reason) for item in items]
            return outcome
        wait = policy.delay(attempt, parse_retry_after(reply.retry_after), rng)
        attempt += 1
        if (yield Sleep(wait)) is GIVE_UP:
            reason = f"shut down while retrying; last {_reason(reply)}"
            outcome.dropped += [(item, "shutdown", reason) for item in items]
            return outcome
