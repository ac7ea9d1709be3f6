"""Detection buckets (pure, no I/O): short windows per project (e.g. 5 s) kept beside the live minutes.

They are never persisted: once a bucket ended `grace` ago it is summarised for the detector (`close`) and
dropped, and an event arriving after that counts in its minute but not in detection (`LiveState.add_records`
reports it as late). `detector.ProjectDetector` merges the summaries of all partitions and judges them.
"""

from __future__ import annotations

import math
from typing import Any

from pravis_stream.counters import Window, minute_start

MAX_BUCKETS_PER_CLOSE = 12
"""After a stall, only this many of the newest closed detection buckets are summarised."""
PROJECT_IDLE_S = 3600.0
"""A project with no event for this long gets no more (empty) detection buckets."""
MINUTE_EPOCHS_KEPT = 4 * 24 * 60
"""Minute-start epochs cached before the cache starts over (four days of minutes)."""


class DetectionBuckets:
    """Every open detection bucket of the partitions one worker owns, keyed by (project, bucket start)."""

    def __init__(self, interval_s: float, grace_s: float, now: float) -> None:
        self.interval = interval_s
        self.grace = grace_s
        self.buckets: dict[tuple[str, float], Window] = {}
        self.watermark = math.floor(now / interval_s) * interval_s
        """Detection buckets starting before this were summarised already."""
        self.project_seen: dict[str, float] = {}
        self._minute_epochs: dict[str, float] = {}

    def bucket_for(self, project: str, minute: str, second: int) -> Window | None:
        """The open bucket holding this moment (created on first use); None when it was summarised already."""
        epoch = self._minute_epochs.get(minute)
        if epoch is None:
            if len(self._minute_epochs) > MINUTE_EPOCHS_KEPT:
                self._minute_epochs.clear()
            epoch = self._minute_epochs[minute] = minute_start(minute).timestamp()
        epoch += second
        if epoch < self.watermark:
            return None
        start = epoch - epoch % self.interval
        bucket = self.buckets.get((project, start))
        if bucket is None:
            bucket = self.buckets[(project, start)] = Window(with_users=False)
            self.project_seen[project] = start
        return bucket

    def close(self, now: float, partitions: list[int], total_partitions: int) -> list[dict[str, Any]]:
        """Summaries of the buckets that ended at least `grace` ago, one per project and bucket, empty ones
        included for projects seen within the hour (a traffic drop is a bucket with few events). `partitions`
        are the ones this worker owns: the detector waits until every partition of a bucket reported."""
        closable = math.floor((now - self.grace) / self.interval) * self.interval
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
