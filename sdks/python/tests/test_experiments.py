"""The SDK's assignment against the vectors shared with the gateway and the JS SDK; exposure tracking."""

import json
from pathlib import Path

import pytest
from pravis_sdk.experiments import bucket_ranges, choose_variation, get_feature_variant, hash_unit

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
