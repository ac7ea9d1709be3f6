"""Detection buckets (pure, no I/O): short windows of event time per project (e.g. 5 s) kept beside the live
minutes.

They close with a watermark: the newest event time counted minus `grace` (the allowed lateness), so a worker
catching up on a backlog judges each bucket once its events are in, not when the wall clock passed it. When no
event was counted for `grace` seconds the watermark follows the wall clock instead: a project whose traffic
stopped still gets its (empty) buckets, which is how the detector sees silence. Event times ahead of the wall
clock never move the watermark (a skewed client must not close buckets early).

They are never persisted: a closed bucket is summarised for the detector (`close`) and dropped, and an event
arriving after that counts in its minute but not in detection (`LiveState.add_records` reports it as late), so
a queue an offline SDK flushes an hour late cannot fire alerts about the past. `detector.ProjectDetector`
merges the summaries of all partitions and judges them.
"""

from __future__ import annotations

import math
from typing import Any

from pravis_stream.counters import Window

MAX_BUCKETS_PER_CLOSE = 12
"""After a stall, only this many of the newest closed detection buckets are summarised."""
PROJECT_IDLE_S = 3600.0
"""A project with no event for this long gets no more (empty) detection buckets."""


class DetectionBuckets:
    """Every open detection bucket of the partitions one worker owns, keyed by (project, bucket start)."""

    def __init__(self, interval_s: float, grace_s: float, now: float) -> None:
        self.interval = interval_s
        self.grace = grace_s
        self.buckets: dict[tuple[str, float], Window] = {}
        self.watermark = math.floor(now / interval_s) * interval_s
        """Detection buckets starting before this were summarised already."""
        self.project_seen: dict[str, float] = {}
        self.newest_event = 0.0
        """The newest event time counted (epoch seconds)."""
        self.last_counted_at = now
        """Wall clock when an event was last counted."""

    def bucket_for(self, project: str, epoch: float) -> Window | None:
        """The open bucket holding this event time (created on first use); None when it was summarised
        already."""
        if epoch > self.newest_event:
            self.newest_event = epoch
        if epoch < self.watermark:
            return None
        start = epoch - epoch % self.interval
        bucket = self.buckets.get((project, start))
        if bucket is None:
            bucket = self.buckets[(project, start)] = Window(with_users=False)
            self.project_seen[project] = start
        return bucket

    def counted_at(self, now: float) -> None:
        self.last_counted_at = now

    def event_clock(self, now: float) -> float:
        """The time the watermark trails by `grace`: the newest event time while events flow, the wall clock
        once they stopped."""
        if now - self.last_counted_at >= self.grace:
            return now
        return min(self.newest_event, now)

    def close(self, now: float, partitions: list[int], total_partitions: int) -> list[dict[str, Any]]:
        """Summaries of the buckets that ended at least `grace` before the event clock, one per project and
        bucket, empty ones included for projects seen within the hour (silence is a bucket without events).
        `partitions` are the ones this worker owns: the detector waits until every partition of a bucket
        reported."""
        closable = math.floor((self.event_clock(now) - self.grace) / self.interval) * self.interval
        if closable <= self.watermark:
            return []
        starts = []
        start = max(self.watermark, closable - MAX_BUCKETS_PER_CLOSE * self.interval)
        while start < closable - 1e-9:
            starts.append(start)
            start += self.interval
        self.watermark = closable
        if not partitions:
            self.buckets.clear()
            return []
        projects = [p for p, seen in self.project_seen.items() if seen > now - PROJECT_IDLE_S]
        self.project_seen = {p: self.project_seen[p] for p in projects}
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
                        "total_partitions": total_partitions,
                        "window": window.to_json(),
                    }
                )
        self.buckets = {key: w for key, w in self.buckets.items() if key[1] >= closable}
        return summaries
