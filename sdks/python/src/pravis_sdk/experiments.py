"""A/B assignment in the SDK, identical to the Pravis gateway's (GrowthBook's v2 hash and bucket ranges).

`get_feature_variant(experiment, user_id, client=client)` takes an experiment as served by
`GET /api/v1/features`; with a client, the assignment is logged as an `experiment_exposure` event. The shared
vectors in `schemas/experiments/assignment_vectors.json` keep this module, the JS SDK and the server equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193


class Tracker(Protocol):
    def track(self, event_type: str, properties: Any = None, **kwargs: Any) -> str | None: ...


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
    for index, (start, end) in enumerate(ranges):
        if start <= n < end:
            return index
    return -1


def get_feature_variant(
    experiment: Mapping[str, Any], user_id: str, client: Tracker | None = None
) -> dict[str, Any]:
    """`{experiment, variant, variation_id, in_experiment, reason}` for `user_id`, as the gateway answers."""
    variants = experiment["variants"]
    index, reason = 0, "not_running"
    if experiment.get("status") == "running":
        n = hash_unit(experiment.get("seed") or experiment["key"], str(user_id))
        ranges = bucket_ranges(
            len(variants), experiment.get("coverage", 1.0), [v["weight"] for v in variants]
        )
        index = choose_variation(n, ranges)
        reason = "outside_coverage" if index < 0 else "assigned"
    in_experiment = reason == "assigned"
    index = index if in_experiment else 0
    result = {
        "experiment": experiment["key"],
        "variant": variants[index]["key"],
        "variation_id": index,
        "in_experiment": in_experiment,
        "reason": reason,
    }
    if client is not None:
        properties = {"reason": reason}
        if experiment.get("version"):
            properties["definition_version"] = experiment["version"]
        client.track(
            "experiment_exposure",
            properties,
            user_id=str(user_id),
            experiment_key=result["experiment"],
            variant=result["variant"],
            in_experiment=in_experiment,
        )
    return result
