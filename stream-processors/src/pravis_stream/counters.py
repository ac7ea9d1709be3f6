"""Live counter types and their JSON codecs (pure, no I/O): what a project's window counts, and how it is
stored.

A window covers a minute of event time: the event's `timestamp`, which the gateway moved onto the server clock
(skew-corrected), so an offline SDK's queue flushed an hour late lands in the minutes it happened and "today"
is the events' UTC date (`partition_state` decides which late events are still counted). Minutes are keyed by
their ISO prefix (`"2026-11-25T12:04"`), so bucketing an event is a string slice, not a datetime parse.

The `to_json` shapes are the stored checkpoint (the `live` table's changelog) and the detection bucket
summaries: a worker restarted on new code restores what the old code wrote, so they change only with a
migration (`tests/test_checkpoint_format.py` holds bytes written before the split of `live.py`).

Metric definitions (also in the README):
- failures: `error` events + `api_request` with status >= 500 + AI events with `success: false`;
  error_rate = failures / events.
- API error_rate per endpoint = status >= 500 / requests (4xx are `client_errors`);
  cache_hit_ratio = hits / requests that reported `cache_hit`.
- AI types `voice_request`, `transcription`, `tts`, `conversation`: success_rate and `request_duration_ms`
  quantiles per (event_type, model_used).
- negative feedback: rating <= 2 or a negative comment (see `sentiment`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pravis_schemas.error_patterns import failure_of, fingerprint
from pravis_schemas.events import AI_EVENT_TYPES

from pravis_stream.sketches import hll_from_text, hll_to_text, kll_from_text, kll_to_text, new_hll, new_kll

AI_TYPES = frozenset(AI_EVENT_TYPES)
MAX_PATTERNS_PER_WINDOW = 200
"""Error fingerprints a detection bucket counts one by one; failures beyond them count only as failures."""
MAX_FINGERPRINTED_PER_WINDOW = 500
"""Failures a detection bucket fingerprints: a message the cache has not seen costs ~50-90 us of regular
expressions (measured on the shared 2-core machine), so an error storm must not turn into a CPU storm; 500
per bucket and worker still show any new pattern's burst (the series fires from +3)."""


class EndpointStats:
    """One API endpoint in one window."""

    __slots__ = ("cache_hits", "cache_known", "client_errors", "count", "latency", "server_errors")

    def __init__(self) -> None:
        self.count = self.server_errors = self.client_errors = self.cache_hits = self.cache_known = 0
        self.latency = new_kll()

    def merge(self, other: EndpointStats) -> None:
        self.count += other.count
        self.server_errors += other.server_errors
        self.client_errors += other.client_errors
        self.cache_hits += other.cache_hits
        self.cache_known += other.cache_known
        self.latency.merge(other.latency)

    def to_json(self) -> list[Any]:
        return [
            self.count,
            self.server_errors,
            self.client_errors,
            self.cache_hits,
            self.cache_known,
            kll_to_text(self.latency),
        ]

    @classmethod
    def from_json(cls, data: list[Any]) -> EndpointStats:
        stats = cls()
        stats.count, stats.server_errors, stats.client_errors, stats.cache_hits, stats.cache_known = data[:5]
        stats.latency = kll_from_text(data[5])
        return stats


class AiStats:
    """One (AI event type, model) pair in one window."""

    __slots__ = ("count", "latency", "success")

    def __init__(self) -> None:
        self.count = self.success = 0
        self.latency = new_kll()

    def merge(self, other: AiStats) -> None:
        self.count += other.count
        self.success += other.success
        self.latency.merge(other.latency)

    def to_json(self) -> list[Any]:
        return [self.count, self.success, kll_to_text(self.latency)]

    @classmethod
    def from_json(cls, data: list[Any]) -> AiStats:
        stats = cls()
        stats.count, stats.success = data[:2]
        stats.latency = kll_from_text(data[2])
        return stats


class Window:
    """Counters of one project over one span (a minute, or a detection bucket without distinct users)."""

    __slots__ = (
        "ai",
        "api",
        "by_type",
        "events",
        "failures",
        "feedback",
        "fingerprinted",
        "negative_feedback",
        "next_offset",
        "patterns",
        "rating_sum",
        "users",
    )

    def __init__(self, with_users: bool = True) -> None:
        self.events = self.failures = self.feedback = self.rating_sum = self.negative_feedback = 0
        self.by_type: dict[str, int] = {}
        self.api: dict[str, EndpointStats] = {}
        self.ai: dict[tuple[str, str], AiStats] = {}
        self.users = new_hll() if with_users else None
        self.next_offset = -1
        self.patterns: dict[str, int] = {}
        self.fingerprinted = 0
        """Failures per error fingerprint (detection buckets only: the new-error-pattern series)."""

    def add(self, event: dict[str, Any], event_type: str) -> None:
        """Count one event; its fields are read before anything changes, so a malformed row counts nothing."""
        failures = self.failures
        if event_type == "api_request":
            endpoint, status, duration = event["endpoint"], event["status"], float(event["duration_ms"])
            stats = self.api.get(endpoint)
            if stats is None:
                stats = self.api[endpoint] = EndpointStats()
            stats.count += 1
            if status >= 500:
                stats.server_errors += 1
                self.failures += 1
            elif status >= 400:
                stats.client_errors += 1
            hit = event.get("cache_hit")
            if hit is not None:
                stats.cache_known += 1
                stats.cache_hits += hit
            stats.latency.update(duration)
        elif event_type in AI_TYPES:
            success, duration = event["success"], float(event["request_duration_ms"])
            key = (event_type, event.get("model_used") or "")
            stats = self.ai.get(key)
            if stats is None:
                stats = self.ai[key] = AiStats()
            stats.count += 1
            if success:
                stats.success += 1
            else:
                self.failures += 1
            stats.latency.update(duration)
        elif event_type == "error":
            self.failures += 1
        if (
            failures != self.failures
            and self.users is None
            and self.fingerprinted < MAX_FINGERPRINTED_PER_WINDOW
        ):
            # Only failures are fingerprinted (regular expressions and a hash): the rest pay one comparison.
            self.fingerprinted += 1
            self.count_pattern(fingerprint(*failure_of(event)), 1)
        self.events += 1
        self.by_type[event_type] = self.by_type.get(event_type, 0) + 1

    def add_feedback(self, rating: int, negative: bool) -> None:
        self.feedback += 1
        self.rating_sum += rating
        self.negative_feedback += negative

    def count_pattern(self, name: str, count: int) -> None:
        if name in self.patterns or len(self.patterns) < MAX_PATTERNS_PER_WINDOW:
            self.patterns[name] = self.patterns.get(name, 0) + count

    def merge(self, other: Window) -> None:
        self.events += other.events
        self.failures += other.failures
        self.feedback += other.feedback
        self.rating_sum += other.rating_sum
        self.negative_feedback += other.negative_feedback
        for name, count in other.by_type.items():
            self.by_type[name] = self.by_type.get(name, 0) + count
        for endpoint, stats in other.api.items():
            self.api.setdefault(endpoint, EndpointStats()).merge(stats)
        for key, stats in other.ai.items():
            self.ai.setdefault(key, AiStats()).merge(stats)
        for name, count in other.patterns.items():
            self.count_pattern(name, count)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "events": self.events,
            "failures": self.failures,
            "feedback": self.feedback,
            "rating_sum": self.rating_sum,
            "negative_feedback": self.negative_feedback,
            "by_type": self.by_type,
            "api": {endpoint: stats.to_json() for endpoint, stats in self.api.items()},
            "ai": [[event_type, model, *stats.to_json()] for (event_type, model), stats in self.ai.items()],
            "next_offset": self.next_offset,
        }
        if self.patterns:  # detection buckets only: minute windows are checkpointed, byte for byte as before
            data["patterns"] = self.patterns
        if self.users is not None:
            data["users"] = hll_to_text(self.users)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Window:
        window = cls(with_users=False)
        window.events, window.failures, window.feedback = data["events"], data["failures"], data["feedback"]
        window.rating_sum, window.negative_feedback = data["rating_sum"], data["negative_feedback"]
        window.by_type = data["by_type"]
        window.api = {endpoint: EndpointStats.from_json(stats) for endpoint, stats in data["api"].items()}
        window.ai = {(row[0], row[1]): AiStats.from_json(row[2:]) for row in data["ai"]}
        window.next_offset = data["next_offset"]
        window.patterns = data.get("patterns", {})  # absent from state saved before error patterns existed
        if "users" in data:
            window.users = hll_from_text(data["users"])
        return window


MINUTE_EPOCHS_KEPT = 4 * 24 * 60
"""Minute-start epochs cached before the cache starts over (four days of minutes)."""


class EpochSeconds:
    """Seconds since the epoch of the pipeline's timestamps (`YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, or `+00:00`
    for UTC as Python's `isoformat` writes it), parsing each minute prefix once: the hot path reads two
    timestamps per event."""

    def __init__(self) -> None:
        self._minutes: dict[str, float] = {}

    def __call__(self, stamp: str) -> float:
        minute = stamp[:16]
        base = self._minutes.get(minute)
        if base is None:
            if len(self._minutes) > MINUTE_EPOCHS_KEPT:
                self._minutes.clear()
            base = self._minutes[minute] = minute_start(minute).timestamp()
        if stamp[-1] == "Z":
            return base + float(stamp[17:-1])
        if stamp.endswith("+00:00"):
            return base + float(stamp[17:-6])
        raise ValueError(f"timestamp {stamp!r} is not UTC (Z or +00:00)")


def minute_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def minute_start(key: str) -> datetime:
    return datetime.fromisoformat(key + ":00+00:00")
