"""The bounded, thread-safe event queue and the account of how every event ended.

Every event put in is eventually counted once as accepted, rejected (the gateway refused it) or dropped
(by the SDK: queue full, too large, not deliverable); drops and rejects are logged and passed to the
`on_error` callback, never silent.
"""

import json
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pravis_sdk.delivery import Outcome

log = logging.getLogger("pravis_sdk")


@dataclass(frozen=True)
class DeliveryError:
    """Events that will not be stored: `kind` is "rejected" (by the gateway) or "dropped" (by the SDK)."""

    kind: str
    reason: str
    events: list[dict[str, Any]]


@dataclass(frozen=True)
class Stats:
    queued: int
    enqueued: int
    accepted: int
    rejected: int
    dropped: int
    dropped_by_reason: dict[str, int] = field(default_factory=dict)


ErrorCallback = Callable[[DeliveryError], None]


def _decode(item: bytes) -> dict[str, Any]:
    return json.loads(item)


class EventBuffer:
    def __init__(self, max_size: int, on_error: ErrorCallback | None = None) -> None:
        self.max_size = max_size
        self.on_error = on_error
        self.cond = threading.Condition()
        self._items: deque[bytes] = deque()
        self._enqueued = self._settled = self._accepted = self._rejected = 0
        self._dropped: Counter[str] = Counter()
        self._full = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: bytes) -> bool:
        """Queue one encoded event; when the queue is full the event is dropped and counted."""
        with self.cond:
            if len(self._items) < self.max_size:
                self._items.append(item)
                self._enqueued += 1
                self._full = False
                self.cond.notify_all()
                return True
            first = not self._full
            self._full = True
            self._dropped["queue_full"] += 1
        if first:
            log.warning("pravis: event queue full (%d events); dropping new events", self.max_size)
        self._report("dropped", "queue_full", [item])
        return False

    def refuse(self, item: bytes, code: str, reason: str) -> None:
        """Count an event dropped before it was queued (e.g. too large)."""
        with self.cond:
            self._dropped[code] += 1
        log.warning("pravis: event dropped: %s", reason)
        self._report("dropped", reason, [item])

    def take(self, max_events: int, max_bytes: int) -> list[bytes]:
        """Up to `max_events` events whose JSON adds up to at most `max_bytes` (at least one event)."""
        batch: list[bytes] = []
        size = 0
        with self.cond:
            while self._items and len(batch) < max_events:
                if batch and size + len(self._items[0]) + 1 > max_bytes:
                    break
                item = self._items.popleft()
                batch.append(item)
                size += len(item) + 1
        return batch

    def drain(self) -> list[bytes]:
        with self.cond:
            items = list(self._items)
            self._items.clear()
        return items

    def settle(self, outcome: Outcome) -> None:
        """Record how a taken batch ended and wake `flush()` waiters."""
        with self.cond:
            self._accepted += outcome.accepted
            self._rejected += len(outcome.rejected)
            for _, code, _ in outcome.dropped:
                self._dropped[code] += 1
            self._settled += outcome.accepted + len(outcome.rejected) + len(outcome.dropped)
            self.cond.notify_all()
        for item, error in outcome.rejected:
            log.warning("pravis: gateway rejected an event: %s", error)
            self._report("rejected", error, [item])
        by_reason: dict[str, list[bytes]] = {}
        for item, _, reason in outcome.dropped:
            by_reason.setdefault(reason, []).append(item)
        for reason, items in by_reason.items():
            log.warning("pravis: %d events dropped: %s", len(items), reason)
            self._report("dropped", reason, items)

    def abandon(self, items: Sequence[bytes], code: str, reason: str) -> None:
        self.settle(Outcome(dropped=[(item, code, reason) for item in items]))

    def mark(self) -> int:
        """A position to wait for with `settled_past`: every event queued so far."""
        with self.cond:
            return self._enqueued

    def settled_past(self, mark: int) -> bool:
        return self._settled >= mark

    def stats(self) -> Stats:
        with self.cond:
            return Stats(
                queued=len(self._items),
                enqueued=self._enqueued,
                accepted=self._accepted,
                rejected=self._rejected,
                dropped=sum(self._dropped.values()),
                dropped_by_reason=dict(self._dropped),
            )

    def _report(self, kind: str, reason: str, items: Sequence[bytes]) -> None:
        if self.on_error is None:
            return
        try:
            self.on_error(DeliveryError(kind, reason, [_decode(item) for item in items]))
        except Exception:
            log.exception("pravis: on_error callback failed")
