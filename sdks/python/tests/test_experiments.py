"""The SDK's assignment against the vectors shared with the gateway and the JS SDK, and against GrowthBook.

The hash and bucket functions it shares with the gateway are tested in schemas/tests/test_assignment.py."""

import json
from pathlib import Path

import pytest
from pravis_sdk.experiments import get_feature_variant

from tests.growthbook_oracle import EXPERIMENTS, growthbook_assignment, unit_ids

VECTORS = json.loads(
    (Path(__file__).parents[3] / "schemas" / "experiments" / "assignment_vectors.json").read_text()
)


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
