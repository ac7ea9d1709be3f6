"""Detector math on synthetic series: one alert and one resolve per injected spike, none on noise."""

import random

import pytest
from pravis_stream.anomaly import Baseline, DetectorConfig, SeriesState, hour_of_week, observe

INTERVAL = 5.0


def run(values, config, volumes=None, start=1_700_000_000.0):
    state = SeriesState()
    verdicts = []
    for i, value in enumerate(values):
        volume = volumes[i] if volumes is not None else 1_000
        verdict = observe(state, config, start + i * INTERVAL, value, volume)
        if verdict:
            verdicts.append((i, verdict))
    return state, verdicts


def noisy(n, mean, sd, seed):
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


def test_baseline_matches_plain_mean_and_variance_during_warmup():
    baseline = Baseline()
    for value in (1.0, 2.0, 3.0, 4.0):
        baseline.update(value, alpha=0.01)
    assert baseline.mean == pytest.approx(2.5)
    assert baseline.var == pytest.approx(1.25)


def test_spike_raises_exactly_one_alert_and_one_resolve():
    config = DetectorConfig(direction="up", warmup=30, min_delta=0.02)
    values = noisy(400, 0.02, 0.004, seed=1)
    values[200:212] = [0.5] * 12

    _, verdicts = run(values, config)

    assert [(i, v.kind) for i, v in verdicts] == [(200, "fire"), (214, "resolve")]
    fire, resolve = verdicts[0][1], verdicts[1][1]
    assert fire.observed == 0.5 and fire.expected == pytest.approx(0.02, abs=0.003) and fire.z > 5
    assert resolve.started_at == fire.started_at


@pytest.mark.parametrize("seed", range(5))
def test_stationary_noise_raises_nothing_over_a_long_series(seed):
    config = DetectorConfig(direction="up", warmup=30)
    _, verdicts = run(noisy(20_000, 100.0, 10.0, seed), config)
    assert verdicts == []


def test_drop_direction_fires_on_a_fall_not_on_a_rise():
    config = DetectorConfig(direction="down", warmup=30, min_ratio=0.5)
    values = noisy(200, 1000.0, 30.0, seed=2)
    values[100:105] = [5000.0] * 5
    values[150:160] = [100.0] * 10

    _, verdicts = run(values, config)

    assert [(i, v.kind) for i, v in verdicts] == [(150, "fire"), (162, "resolve")]


def test_nothing_fires_during_warmup():
    config = DetectorConfig(direction="up", warmup=30)
    values = [1.0] * 10 + [100.0] + [1.0] * 10
    assert run(values, config)[1] == []


def test_minimum_volume_guard_skips_quiet_buckets():
    config = DetectorConfig(direction="up", warmup=10, min_volume=20, min_delta=0.05)
    values = [0.0] * 50 + [1.0] * 5 + [0.0] * 10
    volumes = [100] * 50 + [3] * 5 + [100] * 10  # a handful of errors in a nearly idle bucket

    state, verdicts = run(values, config, volumes)

    assert verdicts == []
    assert state.flat.n == 60


def test_flat_baseline_needs_min_delta_to_fire():
    config = DetectorConfig(direction="up", warmup=10, min_delta=0.05)
    values = [0.0] * 50 + [0.01] * 5 + [0.0] * 5 + [0.2] * 3 + [0.0] * 10
    assert [(i, v.kind) for i, v in run(values, config)[1]] == [(60, "fire"), (65, "resolve")]


def test_cooldown_suppresses_a_second_alert_right_after_a_resolve():
    config = DetectorConfig(direction="up", warmup=20, min_delta=0.1, cooldown=20, resolve_after=2)
    values = [0.0] * 40 + [1.0] * 3 + [0.0] * 2 + [1.0] * 3 + [0.0] * 40 + [1.0] * 3 + [0.0] * 5
    kinds = [(i, v.kind) for i, v in run(values, config)[1]]
    assert kinds == [(40, "fire"), (44, "resolve"), (88, "fire"), (92, "resolve")]


def test_a_lasting_level_shift_eventually_resolves():
    config = DetectorConfig(direction="up", warmup=20, min_ratio=0.5)
    values = noisy(50, 100.0, 5.0, seed=3) + noisy(1000, 300.0, 5.0, seed=4)
    kinds = [v.kind for _, v in run(values, config)[1]]
    assert kinds == ["fire", "resolve"]


def test_seasonal_baseline_learns_each_hour_of_the_week_separately():
    config = DetectorConfig(direction="up", warmup=5, min_ratio=0.5, seasonal=True, alpha=0.2)
    state = SeriesState()
    hour = 3600.0
    week_start = 1_700_438_400.0  # a Monday 00:00 UTC
    assert hour_of_week(week_start) == 0
    verdicts = []
    for week in range(6):
        for h in range(168):
            t = week_start + week * 168 * hour + h * hour
            busy = 9 <= h % 24 < 18
            verdict = observe(state, config, t, 1000.0 if busy else 100.0, 1_000)
            if verdict:
                verdicts.append(verdict)
    # Once every slot is warm, the daily rhythm is normal: only the first weeks (flat baseline) alert.
    late = [v for v in verdicts if v.started_at >= week_start + 5 * 168 * hour]
    assert late == []
    assert state.seasonal[10].mean == pytest.approx(1000.0)
    assert state.seasonal[2].mean == pytest.approx(100.0)


def test_state_round_trips_through_json():
    config = DetectorConfig(direction="up", warmup=3, seasonal=True)
    state, _ = run([1.0, 2.0, 3.0, 50.0], config)
    restored = SeriesState.from_json(state.to_json())
    assert restored == state
