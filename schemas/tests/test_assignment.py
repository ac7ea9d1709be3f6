"""The hash and bucket functions the gateway and the Python SDK share: the vectors shared with the JS SDK,
GrowthBook's own SDK as the oracle, uniformity; and the bucket a user lands in for each reason."""

import json
from collections import Counter
from pathlib import Path

import pytest
from growthbook.core import getBucketRanges
from pravis_schemas.assignment import bucket_of, bucket_ranges, choose_variation, hash_unit
from scipy import stats

from tests.growthbook_oracle import growthbook_assignment, growthbook_hash, unit_ids

VECTORS = json.loads((Path(__file__).parents[1] / "experiments" / "assignment_vectors.json").read_text())


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
    assert choose_variation(case["n"], [tuple(r) for r in case["ranges"]]) == case["expected"]


def test_every_vector_comes_from_growthbook() -> None:
    sections = [section for section in VECTORS.values() if isinstance(section, list)]
    sources = Counter(case["source"] for section in sections for case in section)
    assert sources["growthbook"] >= 9
    assert set(sources) <= {"growthbook", "growthbook-python 4.0.0"}
    for case in VECTORS["hash"]:
        assert growthbook_hash(case["seed"], case["value"]) == case["expected"], case
    for case in VECTORS["assignments"]:
        assert growthbook_assignment(case["experiment"], case["user_id"]) == case["expected"], case["name"]


def test_hash_matches_growthbook_on_non_ascii_ids() -> None:
    for unit_id in unit_ids(5_000, seed=11):
        assert hash_unit("seed-é", unit_id) == growthbook_hash("seed-é", unit_id), unit_id


@pytest.mark.parametrize("coverage", [0, 0.05, 0.333, 0.5, 0.99, 1])
@pytest.mark.parametrize("weights", [[0.5, 0.5], [0.2, 0.3, 0.5], [0.1, 0.2, 0.3, 0.4], [0.7, 0.2]])
def test_bucket_ranges_match_growthbook(coverage: float, weights: list[float]) -> None:
    expected = getBucketRanges(len(weights), coverage, weights)
    assert bucket_ranges(len(weights), coverage, weights) == [pytest.approx(r, abs=1e-12) for r in expected]


def test_hash_is_uniform_over_100k_ids() -> None:
    positions = [hash_unit("uniformity", f"user-{i}") for i in range(100_000)]
    bins = Counter(int(p * 20) for p in positions)
    assert stats.chisquare([bins[b] for b in range(20)]).pvalue > 0.001
    assert all(0 <= p < 1 for p in positions)


def test_bucket_of_each_reason() -> None:
    half_and_half = {"coverage": 1.0, "weights": [0.5, 0.5]}
    assert bucket_of("s", "u-1", running=False, **half_and_half) == (0, "not_running", None)

    # GrowthBook's hash of these ids under seed "s", read from its own SDK: below 0.5, at or above 0.5.
    low = next(i for i in (f"u-{n}" for n in range(100)) if growthbook_hash("s", i) < 0.5)
    high = next(i for i in (f"u-{n}" for n in range(100)) if growthbook_hash("s", i) >= 0.5)
    assert bucket_of("s", low, running=True, **half_and_half) == (0, "assigned", growthbook_hash("s", low))
    assert bucket_of("s", high, running=True, **half_and_half) == (1, "assigned", growthbook_hash("s", high))

    # Coverage 0.5 halves each range: [0, 0.25) and [0.5, 0.75); a hash in [0.25, 0.5) is in neither.
    outside = next(i for i in (f"u-{n}" for n in range(1000)) if 0.25 <= growthbook_hash("s", i) < 0.5)
    bucket = bucket_of("s", outside, running=True, coverage=0.5, weights=[0.5, 0.5])
    assert bucket == (0, "outside_coverage", growthbook_hash("s", outside))
    assert not bucket.in_experiment
