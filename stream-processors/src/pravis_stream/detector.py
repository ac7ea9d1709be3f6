"""Which series are watched, and how a project's detection buckets become alerts (pure, no I/O).

Each worker summarises, per project, the detection buckets of the partitions it owns (`LiveState.
close_buckets`). `ProjectDetector.add` merges the summaries of one bucket until every partition that has been
reporting the project is covered (or a newer bucket shows the missing ones will not come), then judges every
series of the project on the merged bucket:

| metric | labels | value | volume guard | fires when |
|---|---|---|---|---|
| error_rate | | failures / events | events | up, >= +5 points |
| api_error_rate | endpoint | 5xx / requests | requests | up, >= +5 points |
| latency_p95_ms | endpoint | p95 of duration_ms | requests | up, >= +50% |
| traffic_spike | | events per bucket | events | up, >= +100% |
| traffic_drop | | events per bucket | expected events | down, >= -50% |
| traffic_drop | endpoint | requests per bucket | expected requests | down, >= -50% |
| ai_success_rate | event_type, model | successes / requests | requests | down, >= -10 points |
| negative_feedback | | negative feedback per bucket | none | up, >= +3 |
| new_error_pattern | | failures of the bucket's most frequent new fingerprint | none | up, >= +3 |

A fingerprint (pravis_schemas.error_patterns) is new for `NEW_PATTERN_S` after the bucket it was first seen
in; the project remembers the first sighting of at most `MAX_KNOWN_PATTERNS` fingerprints, forgetting the
oldest first.

on top of the z-score threshold of `anomaly` (see there for warm-up, cooldown and resolve).

Silence is an observation: a bucket without events (workers keep closing empty buckets for projects seen
within the hour, see `detection_buckets`) observes zero traffic, and a known endpoint absent from a bucket
observes zero requests. The drop series are guarded by the volume expected, not by what is left of it, so only
an endpoint with steady traffic (an expected 20+ requests per bucket) can page when its requests stop.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pravis_schemas.messages import Alert, AlertStatus, Severity

from pravis_stream import anomaly
from pravis_stream.anomaly import DetectorConfig, SeriesState, Verdict, observe
from pravis_stream.counters import Window
from pravis_stream.sketches import quantiles

SILENCE_IS_ZERO = frozenset({"traffic_drop"})
"""Series whose absence from a bucket means zero (volumes), not "no data" (rates, quantiles)."""
MAX_PENDING_BUCKETS = 3
"""A bucket still incomplete when this many newer ones are pending is judged with what arrived."""
NEW_PATTERN_S = 3600.0
MAX_KNOWN_PATTERNS = 5000
REPORTING_MEMORY_BUCKETS = 12
"""Once a project's detector is this many buckets old, a bucket is complete when every partition that
reported the project within this many buckets did: a worker that never saw the project sends none of its
buckets, and waiting for it would delay every alert. Before that (nothing known yet) it waits for all."""


@dataclass(frozen=True)
class Thresholds:
    """The knobs settings expose; per-metric guards are derived from them."""

    alpha: float = anomaly.DEFAULT_ALPHA
    z_threshold: float = anomaly.DEFAULT_Z_THRESHOLD
    z_resolve: float = anomaly.DEFAULT_Z_RESOLVE
    warmup: int = anomaly.DEFAULT_WARMUP
    resolve_after: int = anomaly.DEFAULT_RESOLVE_AFTER
    cooldown: int = anomaly.DEFAULT_COOLDOWN
    min_events: int = anomaly.DEFAULT_MIN_EVENTS
    seasonal: bool = False

    def configs(self) -> dict[str, DetectorConfig]:
        base = DetectorConfig(
            direction="up",
            alpha=self.alpha,
            z_threshold=self.z_threshold,
            z_resolve=self.z_resolve,
            warmup=self.warmup,
            resolve_after=self.resolve_after,
            cooldown=self.cooldown,
            seasonal=self.seasonal,
            min_volume=self.min_events,
        )
        return {
            "error_rate": replace(base, min_std=0.005, min_delta=0.05),
            "api_error_rate": replace(base, min_std=0.005, min_delta=0.05),
            "latency_p95_ms": replace(base, min_std=1.0, min_ratio=0.5),
            "traffic_spike": replace(base, min_std=1.0, min_ratio=1.0),
            "traffic_drop": replace(base, direction="down", min_std=1.0, min_ratio=0.5),
            "ai_success_rate": replace(base, direction="down", min_std=0.01, min_delta=0.1),
            "negative_feedback": replace(base, min_volume=0, min_std=1.0, min_delta=3.0),
            "new_error_pattern": replace(base, min_volume=0, min_std=1.0, min_delta=3.0),
        }


@dataclass(frozen=True)
class Observation:
    metric: str
    labels: tuple[tuple[str, str], ...]
    value: float | None
    volume: float

    @property
    def series(self) -> str:
        return self.metric + "".join(f"|{k}={v}" for k, v in self.labels)


def observations(window: Window) -> list[Observation]:
    """Every series' value in one merged detection bucket."""
    events = window.events
    found = [
        Observation("error_rate", (), window.failures / events if events else None, events),
        Observation("traffic_spike", (), float(events), events),
        Observation("traffic_drop", (), float(events), events),
        Observation("negative_feedback", (), float(window.negative_feedback), window.feedback),
    ]
    for endpoint, stats in window.api.items():
        labels = (("endpoint", endpoint),)
        found.append(Observation("api_error_rate", labels, stats.server_errors / stats.count, stats.count))
        found.append(Observation("traffic_drop", labels, float(stats.count), stats.count))
        p95 = quantiles(stats.latency, (0.95,))
        found.append(Observation("latency_p95_ms", labels, p95[0] if p95 else None, stats.count))
    for (event_type, model), stats in window.ai.items():
        labels = (("event_type", event_type), ("model", model))
        found.append(Observation("ai_success_rate", labels, stats.success / stats.count, stats.count))
    return found


def _iso(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def alert_id(project: str, series: str, started_at: float) -> str:
    """Stable across redelivery: the same anomaly always gets the same id."""
    digest = hashlib.sha1(f"{project}\x00{series}\x00{started_at}".encode()).hexdigest()[:16]
    return f"{project}-{digest}"


@dataclass
class ProjectDetector:
    """All series of one project plus the buckets still waiting for partitions; JSON-serialisable."""

    project: str
    series: dict[str, SeriesState] = field(default_factory=dict)
    firing: dict[str, dict[str, Any]] = field(default_factory=dict)
    """series -> the firing Alert (JSON), to build its resolve and to list what is firing now."""
    pending: dict[float, dict[str, Any]] = field(default_factory=dict)
    """bucket start -> {"partitions": [...], "window": Window JSON} merged so far"""
    judged_until: float = 0.0
    known_patterns: dict[str, float] = field(default_factory=dict)
    """error fingerprint -> start of the bucket it was first seen in, oldest first"""
    reporting: dict[int, float] = field(default_factory=dict)
    """partition -> start of the newest bucket a summary covering it reported for this project"""
    first_bucket: float | None = None

    def add(self, summary: dict[str, Any], thresholds: Thresholds) -> list[Alert]:
        """Merge one bucket summary; judge every bucket that became complete. Returns alerts to publish."""
        start = summary["bucket_start"]
        if start < self.judged_until:
            return []
        entry = self.pending.get(start)
        if entry is None:
            self.pending[start] = {"partitions": sorted(summary["partitions"]), "window": summary["window"]}
        elif not set(summary["partitions"]) & set(entry["partitions"]):
            window = Window.from_json(entry["window"])
            window.merge(Window.from_json(summary["window"]))
            entry["window"] = window.to_json()
            entry["partitions"] = sorted({*entry["partitions"], *summary["partitions"]})
        # else: a redelivered summary, or a partition summarised by its old and new owner: first one wins
        for partition in summary["partitions"]:
            self.reporting[partition] = max(start, self.reporting.get(partition, start))
        if self.first_bucket is None:
            self.first_bucket = start
        interval = summary["interval_s"]
        alerts: list[Alert] = []
        total = summary["total_partitions"]
        for bucket in sorted(self.pending):
            covered = set(self.pending[bucket]["partitions"])
            recent = bucket - REPORTING_MEMORY_BUCKETS * interval
            expected = {p for p, seen in self.reporting.items() if seen >= recent}
            known = self.first_bucket <= recent
            complete = len(covered) >= total or (known and covered >= expected)
            if not complete and len(self.pending) <= MAX_PENDING_BUCKETS:
                break
            entry = self.pending.pop(bucket)
            alerts += self.judge(bucket, summary["interval_s"], Window.from_json(entry["window"]), thresholds)
            self.judged_until = bucket + summary["interval_s"]
        return alerts

    def judge(self, start: float, interval: float, window: Window, thresholds: Thresholds) -> list[Alert]:
        configs = thresholds.configs()
        seen = {}
        for obs in [*observations(window), self._new_patterns(start, window)]:
            seen[obs.series] = obs
        for name in self.series:
            if name not in seen:
                metric, *parts = name.split("|")
                labels = tuple((key, value) for key, _, value in (part.partition("=") for part in parts))
                seen[name] = Observation(metric, labels, 0.0 if metric in SILENCE_IS_ZERO else None, 0)
        alerts = []
        for name, obs in seen.items():
            state = self.series.setdefault(name, SeriesState())
            config = configs[obs.metric]
            volume = obs.volume
            if obs.metric == "traffic_drop" and state.flat.n:
                # A drop is guarded by the traffic expected, not by what is left of it; before any baseline
                # exists the bucket's own volume decides, or the series could never learn one.
                volume = state.flat.mean
            verdict = observe(state, config, start, obs.value, volume)
            if verdict is not None:
                alerts.append(self._alert(name, obs, verdict, start, interval, config))
        return alerts

    def _new_patterns(self, start: float, window: Window) -> Observation:
        """The bucket's largest count of one new fingerprint; remembers the fingerprints first seen in it."""
        for name in window.patterns:
            self.known_patterns.setdefault(name, start)
        while len(self.known_patterns) > MAX_KNOWN_PATTERNS:
            del self.known_patterns[next(iter(self.known_patterns))]
        # A fingerprint forgotten already (MAX_KNOWN_PATTERNS) is an old one.
        recent = start - NEW_PATTERN_S
        counts = [c for name, c in window.patterns.items() if self.known_patterns.get(name, recent) > recent]
        return Observation("new_error_pattern", (), float(max(counts, default=0)), window.failures)

    def _alert(
        self,
        name: str,
        obs: Observation,
        verdict: Verdict,
        start: float,
        interval: float,
        config: DetectorConfig,
    ) -> Alert:
        common = {
            "alert_id": alert_id(self.project, name, verdict.started_at),
            "project_id": self.project,
            "metric": obs.metric,
            "labels": dict(obs.labels),
            "observed": round(verdict.observed, 6),
            "expected": round(verdict.expected, 6),
            "window_start": _iso(start),
            "window_end": _iso(start + interval),
            "started_at": _iso(verdict.started_at),
        }
        if verdict.kind == "fire":
            severity = Severity.CRITICAL if verdict.z >= 2 * config.z_threshold else Severity.WARNING
            alert = Alert(
                **common,
                status=AlertStatus.FIRING,
                severity=severity,
                message=_message(self.project, obs, verdict),
            )
            self.firing[name] = alert.model_dump(mode="json")
            return alert
        fired = self.firing.pop(name, None)
        base = Alert.model_validate(fired) if fired else None
        return Alert(
            **common,
            status=AlertStatus.RESOLVED,
            severity=base.severity if base else Severity.INFO,
            resolved_at=_iso(start + interval),
            message=f"resolved: {obs.metric}{_labels_text(obs)} back to normal",
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "series": {name: state.to_json() for name, state in self.series.items()},
            "firing": self.firing,
            "pending": {str(start): entry for start, entry in self.pending.items()},
            "judged_until": self.judged_until,
            "known_patterns": self.known_patterns,
            "reporting": {str(partition): start for partition, start in self.reporting.items()},
            "first_bucket": self.first_bucket,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProjectDetector:
        return cls(
            project=data["project"],
            series={name: SeriesState.from_json(state) for name, state in data["series"].items()},
            firing=data["firing"],
            pending={float(start): entry for start, entry in data["pending"].items()},
            judged_until=data["judged_until"],
            known_patterns=data.get("known_patterns", {}),
            # Stored before partitions were remembered: learnt again from the next summaries.
            reporting={int(p): start for p, start in data.get("reporting", {}).items()},
            first_bucket=data.get("first_bucket"),
        )


def _labels_text(obs: Observation) -> str:
    return "".join(f" {k}={v}" for k, v in obs.labels)


def _message(project: str, obs: Observation, verdict: Verdict) -> str:
    return (
        f"{project}: {obs.metric}{_labels_text(obs)} is {verdict.observed:.4g}, expected about "
        f"{verdict.expected:.4g} (z={verdict.z:.1f})"
    )
