"""The SDK's assignment against the vectors shared with the gateway and the JS SDK; exposure tracking."""

import json
from pathlib import Path

import pytest
from growthbook.core import getBucketRanges
from pravis_sdk.experiments import bucket_ranges, choose_variation, get_feature_variant, hash_unit

from tests.growthbook_oracle import EXPERIMENTS, growthbook_assignment, growthbook_hash, unit_ids

VECTORS = json.loads(
    (Path(__file__).parents[3] / "schemas" / "experiments" / "assignment_vectors.json").read_text()
)


@pytest.mark.parametrize("case", VECTORS["hash"], ids=lambda c: f"{c['seed']}|{c['value'][:20]}")
def test_hash_vectors(case) -> None:
    assert hash_unit(case["seed"], case["value"]) == case["expected"]


@pytest.mark.parametrize("case", VECTORS["bucket_ranges"], ids=lambda c: c["name"])
def test_bucket_range_vectors(case) -> None:
    ranges = bucket_ranges(case["variations"], case["coverage"], case["weights"])
    assert ranges == [pytest.approx(tuple(r), abs=1e-9) for r in case["expected"]]


@pytest.mark.parametrize("case", VECTORS["choose_variation"], ids=lambda c: c["name"])
def test_choose_variation_vectors(case) -> None:
    assert choose_variation(case["n"], case["ranges"]) == case["expected"]


@pytest.mark.parametrize("case", VECTORS["assignments"], ids=lambda c: c["name"])
def test_assignment_vectors(case) -> None:
    got = get_feature_variant(case["experiment"], case["user_id"])
    assert {k: got[k] for k in ("variant", "variation_id", "in_experiment")} == case["expected"]


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=lambda e: e["key"])
def test_assignment_matches_growthbook_on_thousands_of_ids(experiment) -> None:
    for unit_id in unit_ids(3_000, seed=7):
        got = get_feature_variant(experiment, unit_id)
        assert {k: got[k] for k in ("variant", "variation_id", "in_experiment")} == growthbook_assignment(
            experiment, unit_id
        ), unit_id


def test_hash_matches_growthbook_on_non_ascii_ids() -> None:
    for unit_id in unit_ids(5_000, seed=11):
        assert hash_unit("seed-é", unit_id) == growthbook_hash("seed-é", unit_id), unit_id


@pytest.mark.parametrize("coverage", [0, 0.05, 0.333, 0.5, 0.99, 1])
@pytest.mark.parametrize("weights", [[0.5, 0.5], [0.2, 0.3, 0.5], [0.1, 0.2, 0.3, 0.4], [0.7, 0.2]])
def test_bucket_ranges_match_growthbook(coverage: float, weights: list[float]) -> None:
    expected = getBucketRanges(len(weights), coverage, weights)
    assert bucket_ranges(len(weights), coverage, weights) == [pytest.approx(r, abs=1e-12) for r in expected]
