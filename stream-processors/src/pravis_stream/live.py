"""Live counters (pure, no I/O): per project, 1-minute windows by `received_at`, split by source partition.

Why `received_at`: live counters watch the pipeline now; an offline SDK's batch with hour-old timestamps must
not reopen old windows (the warehouse keeps event time for analysis). Windows are keyed by the minute's ISO
prefix (`"2026-11-25T12:04"`), so bucketing an event is a string slice, not a datetime parse.

State is split by partition of the `events` topic because that is the unit a worker owns and restores. Each
window carries `next_offset`, the partition position when it was last persisted; with the partition cursor
that makes a restart exact: replayed events whose window already holds them are skipped (see
`LiveState.assign`). Detection buckets (shorter, e.g. 5 s) are kept beside the minutes, never persisted,
and summarised once closed for the detector (`close_buckets`).

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

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pravis_schemas.events import AI_EVENT_TYPES
from pravis_schemas.messages import ScoredFeedback

from pravis_stream import sentiment
from pravis_stream.sketches import (
    HLL_RELATIVE_ERROR,
    distinct,
    hll_from_text,
    hll_to_text,
    kll_from_text,
    kll_to_text,
    new_hll,
    new_kll,
    quantiles,
)

AI_TYPES = frozenset(AI_EVENT_TYPES)
MAX_BUCKETS_PER_CLOSE = 12
"""After a stall, only this many of the newest closed detection buckets are summarised."""
PROJECT_IDLE_S = 3600.0
"""A project with no event for this long gets no more (empty) detection buckets."""
WINDOWS = {"5m": 5, "1h": 60, "24h": 24 * 60}
"""Named spans of minutes for the live API; `today` is the UTC day so far."""


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
        "negative_feedback",
        "next_offset",
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

    def add(self, event: dict[str, Any], event_type: str) -> None:
        """Count one event; its fields are read before anything changes, so a malformed row counts nothing."""
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
        self.events += 1
        self.by_type[event_type] = self.by_type.get(event_type, 0) + 1

    def add_feedback(self, rating: int, negative: bool) -> None:
        self.feedback += 1
        self.rating_sum += rating
        self.negative_feedback += negative

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
        if "users" in data:
            window.users = hll_from_text(data["users"])
        return window


def minute_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def minute_start(key: str) -> datetime:
    return datetime.fromisoformat(key + ":00+00:00")


def window_key(partition: int, minute: str, project: str) -> str:
    return f"{partition}/m/{minute}/{project}"


def cursor_key(partition: int) -> str:
    return f"{partition}/cursor"


@dataclass
class PartitionState:
    """What one worker knows about one partition of the events topic."""

    minutes: dict[str, dict[str, Window]] = field(default_factory=dict)
    """project -> minute key -> window"""
    dirty: set[tuple[str, str]] = field(default_factory=set)
    position: int | None = None
    """Offset of the next record to read; None until the first record (then: from the earliest)."""
    replay: dict[tuple[str, str], int] = field(default_factory=dict)
    """(project, minute) -> next_offset of restored windows: their events below it are already counted."""
    replay_until: int = -1


@dataclass
class Dropped:
    partition: int
    offset: int
    reason: str


@dataclass
class BatchResult:
    scored: list[ScoredFeedback] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    replayed: int = 0
    """Events skipped because a restored window already counted them."""
    expired: int = 0
    """Events older than the retention (e.g. when starting on an old topic)."""
    late: int = 0
    """Events whose detection bucket was already summarised (counted in minutes, not in detection)."""


class LiveState:
    def __init__(
        self,
        total_partitions: int,
        retention_minutes: int,
        detect_interval_s: float,
        detect_grace_s: float,
        now: float,
    ) -> None:
        self.total_partitions = total_partitions
        self.retention = timedelta(minutes=retention_minutes)
        self.interval = detect_interval_s
        self.grace = detect_grace_s
        self.partitions: dict[int, PartitionState] = {}
        self.buckets: dict[tuple[str, float], Window] = {}
        self.watermark = math.floor(now / detect_interval_s) * detect_interval_s
        """Detection buckets starting before this were summarised already."""
        self.project_seen: dict[str, float] = {}
        self._minute_epochs: dict[str, float] = {}

    # -- partitions -------------------------------------------------------------------------------------

    def assign(self, partition: int, items: Iterable[tuple[str, bytes]]) -> int | None:
        """Restore a partition from its persisted (key, value) items; return the offset to resume from."""
        state = PartitionState()
        for key, value in items:
            parts = key.split("/", 3)
            if parts[1] == "cursor":
                state.position = orjson.loads(value)["position"]
                continue
            minute, project = parts[2], parts[3]
            window = Window.from_json(orjson.loads(value))
            state.minutes.setdefault(project, {})[minute] = window
            state.replay[(project, minute)] = window.next_offset
        position = state.position if state.position is not None else -1
        state.replay = {key: offset for key, offset in state.replay.items() if offset > position}
        state.replay_until = max(state.replay.values(), default=-1)
        self.partitions[partition] = state
        return state.position

    def revoke(self, partition: int) -> None:
        self.partitions.pop(partition, None)

    # -- the hot path -----------------------------------------------------------------------------------

    def _minute_epoch(self, minute: str) -> float:
        epoch = self._minute_epochs.get(minute)
        if epoch is None:
            if len(self._minute_epochs) > 4 * 24 * 60:
                self._minute_epochs.clear()
            epoch = self._minute_epochs[minute] = minute_start(minute).timestamp()
        return epoch

    def add_records(self, partition: int, records: Iterable[tuple[int, bytes]], now: datetime) -> BatchResult:
        """Count a partition's records (offset, value) in order; a value holds one or more JSON rows separated
        by newlines (`pravis_schemas.rows_of_record`). Per event only dict work and two sketch updates.
        Feedback events are scored on the way (they are rare) and returned for publishing."""
        state = self.partitions[partition]
        result = BatchResult()
        oldest = minute_key(now - self.retention)
        minutes, dirty, buckets, interval = state.minutes, state.dirty, self.buckets, self.interval
        watermark, loads = self.watermark, orjson.loads
        last_offset = None
        read_from = state.position if state.position is not None else -1
        for offset, value in records:
            if offset < read_from:  # delivered again, e.g. fetched before a re-seek: already counted
                continue
            last_offset = offset
            for raw in value.split(b"\n"):
                if not raw:
                    continue
                try:
                    event = loads(raw)
                    project, received = event["project_id"], event["received_at"]
                    event_type = event["event_type"]
                    minute = received[:16]
                    if offset < state.replay_until and offset < state.replay.get((project, minute), -1):
                        result.replayed += 1
                        continue
                    if minute < oldest:
                        result.expired += 1
                        continue
                    scored = sentiment.score_feedback(event, now) if event_type == "feedback" else None
                    per_project = minutes.get(project)
                    if per_project is None:
                        per_project = minutes[project] = {}
                    window = per_project.get(minute)
                    if window is None:
                        window = per_project[minute] = Window()
                    window.add(event, event_type)
                    user = event.get("user_id") or event.get("anonymous_id")
                    if user:
                        window.users.update(user)
                    dirty.add((project, minute))

                    epoch = self._minute_epoch(minute) + int(received[17:19])
                    bucket = None
                    if epoch >= watermark:
                        start = epoch - epoch % interval
                        bucket = buckets.get((project, start))
                        if bucket is None:
                            bucket = buckets[(project, start)] = Window(with_users=False)
                            self.project_seen[project] = start
                        bucket.add(event, event_type)
                    else:
                        result.late += 1
                    if scored is not None:
                        negative = sentiment.is_negative(scored)
                        window.add_feedback(scored.rating, negative)
                        if bucket is not None:
                            bucket.add_feedback(scored.rating, negative)
                        result.scored.append(scored)
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    result.dropped.append(Dropped(partition, offset, f"{type(exc).__name__}: {exc}"))
        if last_offset is not None:
            state.position = last_offset + 1
            if state.replay_until >= 0 and state.position >= state.replay_until:
                state.replay, state.replay_until = {}, -1
        return result

    # -- persistence ------------------------------------------------------------------------------------

    def drain_writes(self, partition: int, now: datetime) -> list[tuple[str, bytes | None]]:
        """Table writes that bring the persisted partition up to date: changed windows (stamped with the
        current position), tombstones for expired ones, and last the cursor."""
        state = self.partitions.get(partition)
        if state is None or state.position is None:
            return []
        oldest = minute_key(now - self.retention)
        writes: list[tuple[str, bytes | None]] = []
        for project, per_project in list(state.minutes.items()):
            for minute in [m for m in per_project if m < oldest]:
                del per_project[minute]
                state.dirty.discard((project, minute))
                writes.append((window_key(partition, minute, project), None))
            if not per_project:
                del state.minutes[project]
        for project, minute in state.dirty:
            window = state.minutes[project][minute]
            window.next_offset = state.position
            writes.append((window_key(partition, minute, project), orjson.dumps(window.to_json())))
        state.dirty.clear()
        writes.append((cursor_key(partition), orjson.dumps({"position": state.position})))
        return writes

    # -- detection buckets ------------------------------------------------------------------------------

    def close_buckets(self, now: float) -> list[dict[str, Any]]:
        """Summaries of the detection buckets that ended at least `grace` ago, one per project and bucket,
        empty ones included for projects seen within the hour (a traffic drop is a bucket with few events)."""
        closable = math.floor((now - self.grace) / self.interval) * self.interval
        if closable <= self.watermark:
            return []
        starts = []
        start = max(self.watermark, closable - MAX_BUCKETS_PER_CLOSE * self.interval)
        while start < closable - 1e-9:
            starts.append(start)
            start += self.interval
        self.watermark = closable
        if not self.partitions:
            self.buckets.clear()
            return []
        projects = [p for p, seen in self.project_seen.items() if seen > now - PROJECT_IDLE_S]
        self.project_seen = {p: self.project_seen[p] for p in projects}
        partitions = sorted(self.partitions)
        summaries = []
        for start in starts:
            for project in projects:
                window = self.buckets.pop((project, start), None) or Window(with_users=False)
                summaries.append(
                    {
                        "project_id": project,
                        "bucket_start": start,
                        "interval_s": self.interval,
                        "partitions": partitions,
                        "total_partitions": self.total_partitions,
                        "window": window.to_json(),
                    }
                )
        self.buckets = {key: w for key, w in self.buckets.items() if key[1] >= closable}
        return summaries

    # -- queries ----------------------------------------------------------------------------------------

    def projects(self) -> list[str]:
        return sorted({project for state in self.partitions.values() for project in state.minutes})

    def minutes_of(self, project: str, since: str) -> dict[str, list[Window]]:
        """minute key -> this worker's windows of that minute (one per partition), from `since` on."""
        found: dict[str, list[Window]] = {}
        for state in self.partitions.values():
            for minute, window in state.minutes.get(project, {}).items():
                if minute >= since:
                    found.setdefault(minute, []).append(window)
        return found


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _latency(sketch: Any) -> dict[str, float] | None:
    values = quantiles(sketch)
    return dict(zip(("p50", "p95", "p99"), values, strict=True)) if values else None


def merged(windows: Iterable[Window]) -> Window:
    total = Window(with_users=False)
    for window in windows:
        total.merge(window)
    return total


def _api_block(window: Window) -> dict[str, Any]:
    latency = new_kll()
    requests = server = client = hits = known = 0
    endpoints = {}
    for endpoint, stats in sorted(window.api.items()):
        latency.merge(stats.latency)
        requests += stats.count
        server += stats.server_errors
        client += stats.client_errors
        hits += stats.cache_hits
        known += stats.cache_known
        endpoints[endpoint] = {
            "requests": stats.count,
            "server_errors": stats.server_errors,
            "client_errors": stats.client_errors,
            "error_rate": _rate(stats.server_errors, stats.count),
            "cache_hit_ratio": _rate(stats.cache_hits, stats.cache_known),
            "latency_ms": _latency(stats.latency),
        }
    return {
        "requests": requests,
        "server_errors": server,
        "client_errors": client,
        "error_rate": _rate(server, requests),
        "cache_hit_ratio": _rate(hits, known),
        "latency_ms": _latency(latency),
        "endpoints": endpoints,
    }


def _ai_block(window: Window) -> dict[str, Any]:
    requests = sum(stats.count for stats in window.ai.values())
    success = sum(stats.success for stats in window.ai.values())
    return {
        "requests": requests,
        "success_rate": _rate(success, requests),
        "by_model": [
            {
                "event_type": event_type,
                "model": model or None,
                "requests": stats.count,
                "success_rate": _rate(stats.success, stats.count),
                "latency_ms": _latency(stats.latency),
            }
            for (event_type, model), stats in sorted(window.ai.items())
        ],
    }


def _span_start(name: str, now: datetime) -> str:
    if name == "today":
        return now.astimezone(UTC).strftime("%Y-%m-%dT00:00")
    return minute_key(now - timedelta(minutes=WINDOWS[name] - 1))


def summary(state: LiveState, project: str, window_name: str, now: datetime) -> dict[str, Any]:
    """JSON of `GET /live/{project_id}/summary?window=...` (shape documented in the README)."""
    day_start = _span_start("today", now)
    hour_start = _span_start("1h", now)
    since = min(day_start, hour_start, _span_start(window_name, now))
    by_minute = state.minutes_of(project, since)
    span_start = _span_start(window_name, now)
    span = merged(w for minute, ws in by_minute.items() if minute >= span_start for w in ws)

    def users(start: str) -> int:
        return distinct(w.users for minute, ws in by_minute.items() if minute >= start for w in ws)

    span_minutes = (minute_start(minute_key(now)) - minute_start(span_start)) // timedelta(minutes=1) + 1
    return {
        "project_id": project,
        "as_of": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "window": window_name,
        "window_start": span_start + ":00Z",
        "partitions": sorted(state.partitions),
        "total_partitions": state.total_partitions,
        "active_users": {
            "last_5m": users(_span_start("5m", now)),
            "last_1h": users(hour_start),
            "today": users(day_start),
            "relative_error": round(HLL_RELATIVE_ERROR, 4),
        },
        "events": {
            "total": span.events,
            "per_minute": round(span.events / span_minutes, 3),
            "by_type": dict(sorted(span.by_type.items())),
        },
        "errors": {
            "failures": span.failures,
            "error_events": span.by_type.get("error", 0),
            "error_rate": _rate(span.failures, span.events),
        },
        "api": _api_block(span),
        "ai": _ai_block(span),
        "feedback": {
            "count": span.feedback,
            "negative": span.negative_feedback,
            "average_rating": round(span.rating_sum / span.feedback, 3) if span.feedback else None,
        },
    }


def timeseries(state: LiveState, project: str, minutes: int, now: datetime) -> dict[str, Any]:
    """JSON of `GET /live/{project_id}/timeseries?minutes=N`: one row per minute, oldest first, zeros
    included."""
    last = minute_start(minute_key(now))
    keys = [minute_key(last - timedelta(minutes=i)) for i in range(minutes - 1, -1, -1)]
    by_minute = state.minutes_of(project, keys[0])
    rows = []
    for key in keys:
        windows = by_minute.get(key, [])
        window = merged(windows)
        api = _api_block(window)
        rows.append(
            {
                "minute": key + ":00Z",
                "events": window.events,
                "by_type": dict(sorted(window.by_type.items())),
                "failures": window.failures,
                "error_rate": _rate(window.failures, window.events),
                "api_requests": api["requests"],
                "api_error_rate": api["error_rate"],
                "api_latency_ms": api["latency_ms"],
                "active_users": distinct(w.users for w in windows) if windows else 0,
                "feedback": window.feedback,
            }
        )
    return {"project_id": project, "partitions": sorted(state.partitions), "minutes": rows}
