"""Deterministic variant assignment, bucket for bucket the same as GrowthBook's v2 hashing (pure, no I/O).

`hash_unit(seed, id) = (fnv1a32(str(fnv1a32(seed + id))) % 10000) / 10000` maps a user into [0, 1); each
variant owns the range `[cumulative weight, cumulative weight + coverage * weight)`, so a user keeps their
variant when coverage grows (only users outside the old ranges join), while changing weights moves the users
whose hash falls into a shifted range, and a new seed reshuffles everyone. FNV-1a runs over UTF-16 code units,
as GrowthBook's JavaScript SDK does (`charCodeAt`), so non-BMP ids hash alike in every Pravis SDK. The hash
and bucket functions are the Python SDK's own (one implementation for server and client);
`schemas/experiments/assignment_vectors.json` keeps it equal to the JS SDK's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pravis_schemas.experiments import ExperimentDefinition
from pravis_sdk.experiments import bucket_ranges, choose_variation, hash_unit

Reason = Literal["assigned", "not_running", "outside_coverage"]
__all__ = ["Assignment", "assign", "bucket_ranges", "choose_variation", "hash_unit"]


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
