"""Partition state of the live counters (pure, no I/O): counting a partition's records in event time, once
per event id, replay after a restart, and the checkpoint writes that make the restart exact.

State is split by partition of the `events` topic because that is the unit a worker owns and restores. Each
window carries `next_offset`, the partition position when it was last persisted; with the partition cursor
that makes a restart exact: replayed events whose window already holds them are skipped (see
`LiveState.assign`). Checkpoint keys are `<partition>/m/<minute>/<project>` (a window, `counters.Window`
JSON), `<partition>/d/...` (the event ids counted, see `dedup`) and `<partition>/cursor` (`{"position": n}`).

Event time: an event counts in the minute of its (skew-corrected) `timestamp` when it arrived (`received_at`)
at most `horizon_s` after it happened and at most `future_skew_s` before; otherwise it is reported as too
late or too early and not counted live (the warehouse still gets it). Within the horizon a late event lands in
its minute; its detection bucket may have closed already (`DetectionBuckets`), then it is reported as late
for detection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pravis_schemas.messages import ScoredFeedback, ScoredSurveyAnswer

from pravis_stream import sentiment
from pravis_stream.counters import EpochSeconds, Window, minute_key
from pravis_stream.dedup import DEFAULT_MAX_IDS, EventIds, event_digest
from pravis_stream.detection_buckets import DetectionBuckets
from pravis_stream.live_parts import MinuteParts, SummaryParts, combined
from pravis_stream.sketches import union_hll

DEFAULT_HORIZON_S = 2 * 3600.0
"""Events that arrive later than this after they happened are not counted live."""
DEFAULT_FUTURE_SKEW_S = 300.0
"""Events stamped further ahead of their arrival than this are not counted live (the gateway's own limit)."""


def window_key(partition: int, minute: str, project: str) -> str:
    return f"{partition}/m/{minute}/{project}"


def cursor_key(partition: int) -> str:
    return f"{partition}/cursor"


@dataclass
class PartitionState:
    """What one worker knows about one partition of the events topic."""

    ids: EventIds
    """The event ids counted within the horizon (retries counted once)."""
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
    counted: int = 0
    scored: list[ScoredFeedback] = field(default_factory=list)
    scored_answers: list[ScoredSurveyAnswer] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    replayed: int = 0
    """Events skipped because a restored window already counted them."""
    duplicates: int = 0
    """Events skipped because an event with the same id (a client retry) was counted already."""
    expired: int = 0
    """Events older than the retention (e.g. when starting on an old topic)."""
    too_late: list[float] = field(default_factory=list)
    """Delays (received_at - timestamp, s) of events beyond the horizon: not counted live."""
    too_early: list[float] = field(default_factory=list)
    """Delays (negative) of events stamped beyond the allowed future skew: not counted live."""
    late: list[float] = field(default_factory=list)
    """Delays of events counted in their minute after their detection bucket closed (not in detection)."""
    evicted: int = 0
    """Event ids forgotten before the horizon to stay within the cap (see `dedup`)."""


class LiveState:
    """The live counters of the partitions one worker owns, with their open detection buckets."""

    def __init__(
        self,
        total_partitions: int,
        retention_minutes: int,
        detect_interval_s: float,
        detect_grace_s: float,
        now: float,
        horizon_s: float = DEFAULT_HORIZON_S,
        future_skew_s: float = DEFAULT_FUTURE_SKEW_S,
        dedup_max_ids: int = DEFAULT_MAX_IDS,
    ) -> None:
        self.total_partitions = total_partitions
        self.retention = timedelta(minutes=retention_minutes)
        # A late event is only worth counting in a window that is still kept.
        self.horizon_s = min(horizon_s, retention_minutes * 60.0)
        self.future_skew_s, self.dedup_max_ids = future_skew_s, dedup_max_ids
        self.partitions: dict[int, PartitionState] = {}
        self.detection = DetectionBuckets(detect_interval_s, detect_grace_s, now)
        self.epoch = EpochSeconds()

    # -- partitions -------------------------------------------------------------------------------------

    def assign(self, partition: int, items: Iterable[tuple[str, bytes]]) -> int | None:
        """Restore a partition from its persisted (key, value) items; return the offset to resume from."""
        state = PartitionState(ids=EventIds(self.horizon_s, self.dedup_max_ids))
        items = list(items)
        for key, value in items:
            if key.endswith("/cursor"):
                state.position = orjson.loads(value)["position"]
        for key, value in items:
            parts = key.split("/", 3)
            if parts[1] == "cursor":
                continue
            if parts[1] == "d":
                state.ids.restore(key, value, state.position if state.position is not None else -1)
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

    def add_records(self, partition: int, records: Iterable[tuple[int, bytes]], now: datetime) -> BatchResult:
        """Count a partition's records (offset, value) in order; a value holds one or more JSON rows separated
        by newlines (`pravis_schemas.rows_of_record`). Per event only dict work, one digest and set lookup
        and two sketch updates. Feedback events and survey answers are scored on the way (they are rare) and
        returned for publishing."""
        state = self.partitions[partition]
        result = BatchResult()
        oldest = minute_key(now - self.retention)
        minutes, dirty, loads, epoch = state.minutes, state.dirty, orjson.loads, self.epoch
        ids = state.ids
        seen, slice_for = ids.seen, ids.slice_for
        horizon, future_skew = self.horizon_s, -self.future_skew_s
        bucket_for = self.detection.bucket_for
        last_offset = None
        counted = 0
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
                    project, stamp = event["project_id"], event["timestamp"]
                    event_type = event["event_type"]
                    at = epoch(stamp)
                    delay = epoch(event["received_at"]) - at
                    if delay > horizon:
                        result.too_late.append(delay)
                        continue
                    if delay < future_skew:
                        result.too_early.append(delay)
                        continue
                    minute = stamp[:16]
                    digest = event_digest(project, event["event_id"])
                    if offset < state.replay_until and offset < state.replay.get((project, minute), -1):
                        ids.remember(digest, at)
                        result.replayed += 1
                        continue
                    if minute < oldest:
                        result.expired += 1
                        continue
                    if digest in seen:
                        result.duplicates += 1
                        continue
                    scored = sentiment.score_feedback(event, now) if event_type == "feedback" else None
                    answers = (
                        sentiment.score_survey_answers(event, now) if event_type == "survey_answered" else ()
                    )
                    per_project = minutes.get(project)
                    if per_project is None:
                        per_project = minutes[project] = {}
                    window = per_project.get(minute)
                    if window is None:
                        window = per_project[minute] = Window()
                    window.add(event, event_type)
                    seen.add(digest)
                    slice_for(at).append(digest)
                    counted += 1
                    user = event.get("user_id") or event.get("anonymous_id")
                    if user:
                        window.users.update(user)
                    dirty.add((project, minute))

                    bucket = bucket_for(project, at)
                    if bucket is not None:
                        bucket.add(event, event_type)
                    else:
                        result.late.append(delay)
                    if scored is not None:
                        negative = sentiment.is_negative(scored)
                        window.add_feedback(scored.rating, negative)
                        if bucket is not None:
                            bucket.add_feedback(scored.rating, negative)
                        result.scored.append(scored)
                    result.scored_answers.extend(answers)
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    result.dropped.append(Dropped(partition, offset, f"{type(exc).__name__}: {exc}"))
        if counted:
            self.detection.counted_at(now.timestamp())
            result.evicted = ids.enforce_cap()
        result.counted = counted
        if last_offset is not None:
            state.position = last_offset + 1
            if state.replay_until >= 0 and state.position >= state.replay_until:
                state.replay, state.replay_until = {}, -1
        return result

    # -- persistence ------------------------------------------------------------------------------------

    def drain_writes(self, partition: int, now: datetime) -> list[tuple[str, bytes | None]]:
        """Table writes that bring the persisted partition up to date: the event ids counted since the last
        persist, changed windows (stamped with the current position), tombstones for expired ones, and last
        the cursor."""
        state = self.partitions.get(partition)
        if state is None or state.position is None:
            return []
        oldest = minute_key(now - self.retention)
        writes = state.ids.drain_writes(partition, state.position, now.timestamp())
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
        """Summaries of the detection buckets that closed by `now` (see `DetectionBuckets.close`)."""
        return self.detection.close(now, sorted(self.partitions), self.total_partitions)

    # -- queries ----------------------------------------------------------------------------------------

    def projects(self) -> list[str]:
        return sorted({project for state in self.partitions.values() for project in state.minutes})

    def minutes_of(self, project: str, since: str, partitions: set[int]) -> dict[str, list[Window]]:
        """minute key -> the windows of that minute (one per partition) from `since` on, of `partitions`."""
        found: dict[str, list[Window]] = {}
        for partition in sorted(partitions):
            for minute, window in self.partitions[partition].minutes.get(project, {}).items():
                if minute >= since:
                    found.setdefault(minute, []).append(window)
        return found

    def owned(self, asked: Iterable[int] | None = None) -> set[int]:
        """The partitions of `asked` (default: all) that this worker holds."""
        return set(self.partitions) if asked is None else set(asked) & set(self.partitions)

    def summary_parts(
        self, project: str, window_start: str, user_starts: list[str], partitions: set[int]
    ) -> SummaryParts:
        """The project's window since `window_start` and its users since each of `user_starts`."""
        by_minute = self.minutes_of(project, min(window_start, *user_starts), partitions)
        parts = SummaryParts(partitions=set(partitions))
        for minute, windows in by_minute.items():
            if minute >= window_start:
                for window in windows:
                    parts.window.merge(window)
        for start in user_starts:
            parts.users[start] = union_hll(
                w.users for minute, windows in by_minute.items() if minute >= start for w in windows
            )
        return parts

    def minute_parts(self, project: str, since: str, partitions: set[int]) -> MinuteParts:
        """The project's windows per minute since `since`, each with its users."""
        by_minute = self.minutes_of(project, since, partitions)
        return MinuteParts(set(partitions), {minute: combined(ws) for minute, ws in by_minute.items()})
