"""The gateway's assignment of a definition: GrowthBook's own SDK as the oracle, vectors shared with the SDKs,
shares, stability; definition checks. The shared hash and bucket functions are tested in schemas/tests."""

import json
from collections import Counter
from pathlib import Path

import pytest
from pravis_gateway.experiments.assignment import assign
from pravis_schemas.experiments import ExperimentDefinition
from pydantic import ValidationError

from tests.growthbook_oracle import EXPERIMENTS, growthbook_assignment, growthbook_hash, unit_ids

VECTORS = json.loads(
    (Path(__file__).parents[2] / "schemas" / "experiments" / "assignment_vectors.json").read_text()
)


def definition(**overrides) -> ExperimentDefinition:
    fields = {
        "key": "checkout-button",
        "status": "running",
        "variants": [{"key": "control", "weight": 0.5}, {"key": "treatment", "weight": 0.5}],
        **overrides,
    }
    return ExperimentDefinition.model_validate(fields)


@pytest.mark.parametrize("case", VECTORS["assignments"], ids=lambda c: c["name"])
def test_assignment_vectors(case) -> None:
    got = assign(ExperimentDefinition.model_validate(case["experiment"]), case["user_id"])
    assert {"variant": got.variant, "variation_id": got.variation_id, "in_experiment": got.in_experiment} == (
        case["expected"]
    )


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda e: e["key"])
def test_assignment_matches_growthbook_on_thousands_of_ids(experiment) -> None:
    parsed = ExperimentDefinition.model_validate(experiment)
    ids = unit_ids(3_000, seed=len(experiment["variants"]))
    assert sum(not i.isascii() for i in ids) > 1_500

    for unit_id in ids:
        got = assign(parsed, unit_id)
        expected = growthbook_assignment(experiment, unit_id)
        assert (got.variant, got.variation_id, got.in_experiment) == tuple(expected.values()), unit_id
        if got.in_experiment:
            assert got.hash_value == growthbook_hash(parsed.hash_seed, unit_id)


def test_assignment_shares_match_weights_and_coverage() -> None:
    three_way = definition(
        coverage=0.4,
        variants=[{"key": "a", "weight": 0.2}, {"key": "b", "weight": 0.3}, {"key": "c", "weight": 0.5}],
    )
    assigned = [assign(three_way, f"user-{i}") for i in range(100_000)]
    counts = Counter(a.variant for a in assigned if a.in_experiment)
    assert sum(counts.values()) == pytest.approx(40_000, rel=0.02)
    for key, share in {"a": 0.2, "b": 0.3, "c": 0.5}.items():
        assert counts[key] == pytest.approx(40_000 * share, rel=0.04)
    assert {a.variant for a in assigned if not a.in_experiment} == {"a"}


def test_assignment_is_stable_and_survives_coverage_growth() -> None:
    small, full = definition(coverage=0.3), definition(coverage=1.0)
    for i in range(5_000):
        first = assign(small, f"u-{i}")
        assert assign(small, f"u-{i}") == first
        if first.in_experiment:
            assert assign(full, f"u-{i}").variant == first.variant


def test_new_seed_reshuffles() -> None:
    old, new = definition(), definition(seed="checkout-button-v2")
    moved = sum(assign(old, f"u-{i}").variant != assign(new, f"u-{i}").variant for i in range(10_000))
    assert moved == pytest.approx(5_000, rel=0.05)


def test_not_running_gets_control_outside_the_experiment() -> None:
    for status in ("draft", "stopped"):
        got = assign(definition(status=status), "u-1")
        assert (got.variant, got.in_experiment, got.reason) == ("control", False, "not_running")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"variants": [{"key": "only", "weight": 1}]}, "at least 2"),
        ({"variants": [{"key": "a", "weight": 0.5}, {"key": "b", "weight": 0.2}]}, "sum to 1"),
        ({"variants": [{"key": "a", "weight": 0.5}, {"key": "a", "weight": 0.5}]}, "unique"),
        ({"variants": [{"key": "a", "weight": 1.5}, {"key": "b", "weight": -0.5}]}, "greater than or equal"),
        ({"coverage": 1.2}, "less than or equal to 1"),
        ({"status": "paused"}, "'draft', 'running' or 'stopped'"),
        ({"key": "has space"}, "pattern"),
        ({"goals": [{"name": "g", "event_type": "button_click", "property": "button_id"}]}, "both"),
        ({"goals": [{"name": "g", "event_type": "x", "value_property": "user_id; DROP"}]}, "events column"),
        ({"goals": [{"name": "g", "event_type": "x"}, {"name": "g", "event_type": "y"}]}, "goal names"),
        ({"surprise": 1}, "Extra inputs"),
    ],
)
def test_invalid_definitions_are_refused_with_a_reason(overrides, reason) -> None:
    with pytest.raises(ValidationError, match=reason):
        definition(**overrides)


def test_goal_properties_accept_columns_and_property_paths() -> None:
    parsed = definition(
        goals=[
            {"name": "checkout", "event_type": "button_click", "property": "button_id", "equals": "buy"},
            {"name": "value", "event_type": "order", "value_property": "properties.cart.amount"},
            {"name": "pro", "event_type": "order", "property": "properties.pro", "equals": True},
        ]
    )
    assert [g.kind for g in parsed.goals] == ["conversion", "mean", "conversion"]
    assert parsed.goals[2].equals_text == "true"
