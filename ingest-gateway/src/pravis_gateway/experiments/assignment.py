"""Deterministic variant assignment, bucket for bucket the same as GrowthBook's v2 hashing (pure, no I/O).

`hash_unit(seed, id) = (fnv1a32(str(fnv1a32(seed + id))) % 10000) / 10000` maps a user into [0, 1); each
variant owns the range `[cumulative weight, cumulative weight + coverage * weight)`, so a user keeps their
variant when coverage grows (only users outside the old ranges join), while changing weights moves the users
whose hash falls into a shifted range, and a new seed reshuffles everyone. FNV-1a runs over UTF-16 code units,
as GrowthBook's JavaScript SDK does (`charCodeAt`), so non-BMP ids hash alike in every Pravis SDK. The SDKs
carry copies of this module; `schemas/experiments/assignment_vectors.json` keeps all of them equal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pravis_schemas.experiments import ExperimentDefinition

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
Range = tuple[float, float]
Reason = Literal["assigned", "not_running", "outside_coverage"]


def fnv1a32(text: str) -> int:
    """32-bit FNV-1a over the UTF-16 code units of `text`."""
    data = text.encode("utf-16-le")
    value = FNV_OFFSET
    for i in range(0, len(data), 2):
        value = ((value ^ (data[i] | data[i + 1] << 8)) * FNV_PRIME) & 0xFFFFFFFF
    return value


def hash_unit(seed: str, unit_id: str) -> float:
    """GrowthBook hash version 2: a position in [0, 1) with a resolution of 1/10000."""
    return (fnv1a32(str(fnv1a32(seed + unit_id))) % 10000) / 10000


def equal_weights(count: int) -> list[float]:
    return [1 / count] * count if count > 0 else []


def bucket_ranges(count: int, coverage: float = 1.0, weights: Sequence[float] | None = None) -> list[Range]:
    """GrowthBook's `getBucketRanges`, fallbacks included (coverage clamped, bad weights -> equal)."""
    coverage = min(max(coverage, 0.0), 1.0)
    chosen = list(weights) if weights is not None else equal_weights(count)
    if len(chosen) != count or not 0.99 <= sum(chosen) <= 1.01:
        chosen = equal_weights(count)
    ranges, cumulative = [], 0.0
    for weight in chosen:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variation(n: float, ranges: Sequence[Range]) -> int:
    """Index of the range holding `n`, or -1 when it falls in no range (outside coverage)."""
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


@dataclass(frozen=True)
class Assignment:
    experiment: str
    variant: str
    variation_id: int
    in_experiment: bool
    reason: Reason
    hash_value: float | None = None


def assign(definition: ExperimentDefinition, unit_id: str) -> Assignment:
    """The variant `unit_id` gets; the control with `in_experiment=False` when not running or not covered."""
    control = Assignment(definition.key, definition.control, 0, False, "not_running")
    if definition.status != "running":
        return control
    n = hash_unit(definition.hash_seed, unit_id)
    index = choose_variation(
        n, bucket_ranges(len(definition.variants), definition.coverage, definition.weights)
    )
    if index < 0:
        return Assignment(definition.key, definition.control, 0, False, "outside_coverage", n)
    return Assignment(definition.key, definition.variants[index].key, index, True, "assigned", n)
