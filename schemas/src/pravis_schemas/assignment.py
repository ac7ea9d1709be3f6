"""Deterministic variant assignment, bucket for bucket the same as GrowthBook's v2 hashing (pure, no I/O).

The one implementation the gateway (`GET /api/v1/feature/{name}`) and the Python SDK (`get_feature_variant`)
both assign with, so server and client agree for every user; the JS SDK keeps its own copy, and
`schemas/experiments/assignment_vectors.json` keeps all of them equal to GrowthBook.

`hash_unit(seed, id) = (fnv1a32(str(fnv1a32(seed + id))) % 10000) / 10000` maps a user into [0, 1); each
variant owns the range `[cumulative weight, cumulative weight + coverage * weight)`, so a user keeps their
variant when coverage grows (only users outside the old ranges join), while changing weights moves the users
whose hash falls into a shifted range, and a new seed reshuffles everyone. FNV-1a runs over UTF-16 code units,
as GrowthBook's JavaScript SDK does (`charCodeAt`), so non-BMP ids hash alike in every Pravis SDK.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193

Reason = Literal["assigned", "not_running", "outside_coverage"]


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over the UTF-16 code units of `text` (as GrowthBook's JavaScript SDK hashes)."""
    data = text.encode("utf-16-le")
    value = FNV_OFFSET
    for i in range(0, len(data), 2):
        value = ((value ^ (data[i] | data[i + 1] << 8)) * FNV_PRIME) & 0xFFFFFFFF
    return value


def hash_unit(seed: str, unit_id: str) -> float:
    """GrowthBook hash version 2: the user's position in [0, 1)."""
    return (fnv1a32(str(fnv1a32(seed + unit_id))) % 10000) / 10000


def _equal(count: int) -> list[float]:
    return [1 / count] * count if count > 0 else []


def bucket_ranges(
    count: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """GrowthBook's getBucketRanges: variant i owns [cumulative, cumulative + coverage * weight)."""
    coverage = min(max(coverage, 0.0), 1.0)
    chosen = list(weights) if weights is not None else _equal(count)
    if len(chosen) != count or not 0.99 <= sum(chosen) <= 1.01:
        chosen = _equal(count)
    ranges, cumulative = [], 0.0
    for weight in chosen:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variation(n: float, ranges: Sequence[Sequence[float]]) -> int:
    """The index of the range holding `n`, -1 when none does (the user is outside coverage)."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


class Bucket(NamedTuple):
    """Where a user lands: the variant index (0, the control, unless assigned), why, and their hash."""

    index: int
    reason: Reason
    hash_value: float | None

    @property
    def in_experiment(self) -> bool:
        return self.reason == "assigned"


def bucket_of(seed: str, unit_id: str, *, running: bool, coverage: float, weights: Sequence[float]) -> Bucket:
    """The bucket of `unit_id` in an experiment with these variant `weights`: the control (index 0) with
    `not_running` while the experiment is not running, or `outside_coverage` when the user's hash falls in
    no variant's range."""
    if not running:
        return Bucket(0, "not_running", None)
    n = hash_unit(seed, unit_id)
    index = choose_variation(n, bucket_ranges(len(weights), coverage, weights))
    if index < 0:
        return Bucket(0, "outside_coverage", n)
    return Bucket(index, "assigned", n)
