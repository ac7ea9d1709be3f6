"""Experiment statistics against scipy on synthetic data, SRM detection, and the results SQL's parameters."""

from datetime import UTC, datetime

import numpy as np
import pytest
from pravis_rollups.experiments import (
    SRM_P_THRESHOLD,
    result_rows,
    results_sql,
    srm_p_value,
    two_proportion_test,
    welch_test,
)
from pravis_schemas.experiments import ExperimentDefinition, StoredExperiment
from scipy import stats


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator of each test's own, seeded: no test's data depends on which tests ran before it."""
    return np.random.default_rng(8)


def test_two_proportion_p_value_matches_scipy_chi2_without_correction(rng: np.random.Generator) -> None:
    control = rng.random(4000) < 0.10
    treatment = rng.random(4200) < 0.12
    got = two_proportion_test(int(control.sum()), 4000, int(treatment.sum()), 4200)
    table = [[control.sum(), 4000 - control.sum()], [treatment.sum(), 4200 - treatment.sum()]]
    expected = stats.chi2_contingency(table, correction=False).pvalue
    assert got.p_value == pytest.approx(expected, rel=1e-9)
    assert got.lift == pytest.approx(treatment.mean() / control.mean() - 1)
    assert got.ci_low < got.lift < got.ci_high


def test_welch_p_value_matches_scipy_on_raw_samples(rng: np.random.Generator) -> None:
    control = rng.exponential(20.0, 3000)
    treatment = rng.exponential(21.5, 2500)
    got = welch_test(control.mean(), control.var(ddof=1), 3000, treatment.mean(), treatment.var(ddof=1), 2500)
    assert got.p_value == pytest.approx(stats.ttest_ind(treatment, control, equal_var=False).pvalue, rel=1e-9)
    assert got.lift == pytest.approx(treatment.mean() / control.mean() - 1)


def test_lift_interval_covers_the_true_lift_about_95_percent_of_the_time(rng: np.random.Generator) -> None:
    covered = 0
    for _ in range(400):
        control, treatment = rng.random(2000) < 0.2, rng.random(2000) < 0.25
        got = two_proportion_test(int(control.sum()), 2000, int(treatment.sum()), 2000)
        covered += got.ci_low <= 0.25 / 0.2 - 1 <= got.ci_high
    assert 0.91 <= covered / 400 <= 0.99


def test_srm_flags_a_55_45_split_of_a_50_50_experiment_but_not_a_balanced_one() -> None:
    assert srm_p_value([5500, 4500], [0.5, 0.5]) < SRM_P_THRESHOLD
    assert srm_p_value([5010, 4990], [0.5, 0.5]) > 0.5
    assert srm_p_value([5500, 4500], [0.5, 0.5]) == pytest.approx(
        stats.chisquare([5500, 4500], [5000, 5000]).pvalue
    )
    assert srm_p_value([0, 0], [0.5, 0.5]) is None


def stored(goals=()) -> StoredExperiment:
    definition = ExperimentDefinition(
        key="exp",
        status="running",
        variants=[{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        goals=list(goals),
    )
    return StoredExperiment(
        project_id="p", version=3, created_at="2026-11-25T00:00:00Z", definition=definition
    )


def test_result_rows_per_variant_and_goal() -> None:
    experiment = stored(
        [
            {"name": "buy", "event_type": "button_click", "property": "button_id", "equals": "buy"},
            {"name": "spend", "event_type": "order", "value_property": "properties.amount"},
        ]
    )
    aggregates = [
        {
            "variant": "control",
            "users": 1000,
            "multi_variant_users": 7,
            "conversions_0": 100,
            "sum_1": 5000.0,
            "squares_1": 60000.0,
        },
        {
            "variant": "treatment",
            "users": 1010,
            "multi_variant_users": 7,
            "conversions_0": 130,
            "sum_1": 5600.0,
            "squares_1": 70000.0,
        },
    ]
    rows = result_rows(experiment, aggregates, datetime.now(UTC), "EUR")
    assert [(r["variant"], r["goal"], r["goal_kind"]) for r in rows] == [
        ("control", "buy", "conversion"),
        ("control", "spend", "mean"),
        ("treatment", "buy", "conversion"),
        ("treatment", "spend", "mean"),
    ]
    control_buy, _, treatment_buy, treatment_spend = rows
    assert control_buy["lift"] is None and control_buy["conversion_rate"] == 0.1
    assert treatment_buy["lift"] == pytest.approx(0.13 / 1010 * 1000 / 0.1 - 1)
    assert treatment_spend["mean"] == pytest.approx(5600 / 1010)
    assert treatment_spend["variance"] == pytest.approx((70000 - 5600**2 / 1010) / 1009)
    assert {r["multi_variant_users"] for r in rows} == {7}
    assert not rows[0]["srm_flag"]


def test_results_sql_passes_every_user_value_as_a_parameter() -> None:
    experiment = stored(
        [{"name": "g", "event_type": "order", "property": "properties.plan", "equals": "1' OR 1=1"}]
    )
    sql, params = results_sql(experiment.definition, "project'; DROP TABLE events", reporting_currency="EUR")
    assert "'" not in sql.replace("'experiment_exposure'", "").replace("''", "")
    assert params["project"] == "project'; DROP TABLE events"
    assert params["g0_eq"] == "1' OR 1=1"
