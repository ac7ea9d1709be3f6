"""The variant the gateway serves for an experiment definition (pure, no I/O).

The hashing and bucketing are `pravis_schemas.assignment`'s, the same the Python SDK assigns with, so a user
gets the same variant from the server and from either SDK.
"""

from __future__ import annotations

from dataclasses import dataclass

from pravis_schemas.assignment import Reason, bucket_of
from pravis_schemas.experiments import ExperimentDefinition


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
    bucket = bucket_of(
        definition.hash_seed,
        unit_id,
        running=definition.status == "running",
        coverage=definition.coverage,
        weights=definition.weights,
    )
    return Assignment(
        definition.key,
        definition.variants[bucket.index].key,
        bucket.index,
        bucket.in_experiment,
        bucket.reason,
        bucket.hash_value,
    )
