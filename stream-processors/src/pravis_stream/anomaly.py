"""Anomaly detection math (pure): an online baseline per metric series and a fire/resolve state machine.

Baseline: exponentially weighted mean and variance (West's incremental form),
    diff = x - mean;  mean += a * diff;  var = (1 - a) * (var + a * diff**2)
with a = max(alpha, 1 / n) so the first observations average plainly instead of trusting the first one.
Optionally one more baseline per hour of the week (`seasonal`), used once that slot has its own warm-up.

Judging one observation x against the baseline (mean m, deviation s = max(sqrt(var), min_std)):
- not judged (and the baseline not updated) when its volume is below `min_volume`: quiet periods never page;
- anomalous when the baseline is warm (`warmup` observations) and the deviation in the watched direction is
  at least max(z_threshold * s, min_delta, min_ratio * |m|) — the last two keep a flat baseline (s ~ 0)
  from paging on a tiny change;
- a series fires on its first anomalous observation (unless cooling down after a resolve), then stays
  firing, without repeats, until `resolve_after` consecutive observations are back under
  max(z_resolve * s, min_delta / 2, min_ratio / 2 * |m|) (or not judged, e.g. the traffic stopped).
A warm baseline learns each observation clipped to mean ± the firing deviation, and 10x slower while firing
or on any outlier (either direction, so a traffic spike does not blind the drop detector): a short spike
does not become the norm, a lasting level shift eventually does, and then resolves.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SLOW_LEARNING = 0.1
"""Factor on alpha while a series fires or an observation is anomalous."""
HOUR_OF_WEEK_OFFSET_H = 72
"""The Unix epoch fell on a Thursday: shift by three days so slot 0 is Monday 00:00 UTC."""

# The alerting knobs' defaults, here only: `DetectorConfig`, the detector's `Thresholds` and the stream
# settings (PRAVIS_STREAM_Z_THRESHOLD, ...) all start from these.
DEFAULT_ALPHA = 0.05
DEFAULT_Z_THRESHOLD = 5.0
DEFAULT_Z_RESOLVE = 2.0
DEFAULT_WARMUP = 60
DEFAULT_RESOLVE_AFTER = 3
DEFAULT_COOLDOWN = 60
DEFAULT_MIN_EVENTS = 20
"""The detector's volume guard on event-counted series (a bare `DetectorConfig` judges any volume)."""


@dataclass(frozen=True)
class DetectorConfig:
    direction: Literal["up", "down"]
    alpha: float = DEFAULT_ALPHA
    z_threshold: float = DEFAULT_Z_THRESHOLD
    z_resolve: float = DEFAULT_Z_RESOLVE
    warmup: int = DEFAULT_WARMUP
    min_volume: float = 0.0
    min_std: float = 0.0
    min_delta: float = 0.0
    min_ratio: float = 0.0
    resolve_after: int = DEFAULT_RESOLVE_AFTER
    cooldown: int = DEFAULT_COOLDOWN
    """Observations after a resolve during which the series does not fire again."""
    seasonal: bool = False


@dataclass
class Baseline:
    n: int = 0
    mean: float = 0.0
    var: float = 0.0

    def update(self, value: float, alpha: float, factor: float = 1.0) -> None:
        self.n += 1
        if self.n == 1:
            self.mean, self.var = value, 0.0
            return
        a = max(alpha, 1.0 / self.n) * factor
        diff = value - self.mean
        self.mean += a * diff
        self.var = (1.0 - a) * (self.var + a * diff * diff)


@dataclass
class SeriesState:
    flat: Baseline = field(default_factory=Baseline)
    seasonal: dict[int, Baseline] = field(default_factory=dict)
    firing_since: float | None = None
    """Start of the observation that fired, while firing."""
    normal_streak: int = 0
    quiet_until: int = 0
    """Observation count (`flat.n` + skipped ones) before which the series may not fire (cooldown)."""
    ticks: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seasonal"] = {str(slot): asdict(b) for slot, b in self.seasonal.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeriesState:
        return cls(
            flat=Baseline(**data["flat"]),
            seasonal={int(slot): Baseline(**b) for slot, b in data["seasonal"].items()},
            firing_since=data["firing_since"],
            normal_streak=data["normal_streak"],
            quiet_until=data["quiet_until"],
            ticks=data["ticks"],
        )


@dataclass(frozen=True)
class Verdict:
    kind: Literal["fire", "resolve"]
    observed: float
    expected: float
    z: float
    started_at: float
    """Start of the observation that fired (for a resolve: of the one that fired the alert)."""


def hour_of_week(t: float) -> int:
    return int(t // 3600 + HOUR_OF_WEEK_OFFSET_H) % 168


def _baseline(state: SeriesState, config: DetectorConfig, t: float) -> Baseline:
    if config.seasonal:
        slot = state.seasonal.get(hour_of_week(t))
        if slot is not None and slot.n >= config.warmup:
            return slot
    return state.flat


def _fire_deviation(baseline: Baseline, config: DetectorConfig) -> tuple[float, float]:
    """(standard deviation with its floor, deviation from the mean that fires)."""
    std = max(math.sqrt(max(baseline.var, 0.0)), config.min_std)
    return std, max(config.z_threshold * std, config.min_delta, config.min_ratio * abs(baseline.mean))


def _learn_one(baseline: Baseline, config: DetectorConfig, value: float, firing: bool) -> None:
    if baseline.n < config.warmup:
        baseline.update(value, config.alpha)
        return
    _, fire_at = _fire_deviation(baseline, config)
    outlier = abs(value - baseline.mean) >= fire_at
    clipped = min(max(value, baseline.mean - fire_at), baseline.mean + fire_at)
    baseline.update(clipped, config.alpha, SLOW_LEARNING if outlier or firing else 1.0)


def _learn(state: SeriesState, config: DetectorConfig, t: float, value: float) -> None:
    firing = state.firing_since is not None
    _learn_one(state.flat, config, value, firing)
    if config.seasonal:
        _learn_one(state.seasonal.setdefault(hour_of_week(t), Baseline()), config, value, firing)


def observe(
    state: SeriesState, config: DetectorConfig, t: float, value: float | None, volume: float
) -> Verdict | None:
    """Judge the observation of the bucket starting at `t` (None: the series had no data) and learn it.
    Returns a verdict when the series starts or stops firing."""
    state.ticks += 1
    baseline = _baseline(state, config, t)
    expected = baseline.mean
    if value is None or volume < config.min_volume:
        return _count_normal(state, config, value if value is not None else expected, expected, 0.0)

    std, fire_at = _fire_deviation(baseline, config)
    deviation = value - expected if config.direction == "up" else expected - value
    z = deviation / std if std > 0 else (math.inf if deviation > 0 else 0.0)
    anomalous = baseline.n >= config.warmup and deviation >= fire_at and deviation > 0

    if state.firing_since is None:
        _learn(state, config, t, value)
        if anomalous and state.ticks > state.quiet_until:
            state.firing_since, state.normal_streak = t, 0
            return Verdict("fire", value, expected, z, t)
        return None

    _learn(state, config, t, value)
    resolve_below = max(config.z_resolve * std, config.min_delta / 2, config.min_ratio / 2 * abs(expected))
    if deviation < resolve_below:
        return _count_normal(state, config, value, expected, z)
    state.normal_streak = 0
    return None


def _count_normal(
    state: SeriesState, config: DetectorConfig, value: float, expected: float, z: float
) -> Verdict | None:
    if state.firing_since is None:
        return None
    state.normal_streak += 1
    if state.normal_streak < config.resolve_after:
        return None
    started = state.firing_since
    state.firing_since, state.normal_streak = None, 0
    state.quiet_until = state.ticks + config.cooldown
    return Verdict("resolve", value, expected, z, started)
