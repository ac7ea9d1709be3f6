"""A/B assignment in the SDK with the gateway's own hashing and bucketing (`pravis_schemas.assignment`).

`get_feature_variant(experiment, user_id, client=client)` takes an experiment as served by
`GET /api/v1/features`; with a client, the assignment is logged as an `experiment_exposure` event. The shared
vectors in `schemas/experiments/assignment_vectors.json` keep this module, the JS SDK and the server equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pravis_schemas.assignment import bucket_of


class Tracker(Protocol):
    def track(self, event_type: str, properties: Any = None, **kwargs: Any) -> str | None: ...


def get_feature_variant(
    experiment: Mapping[str, Any], user_id: str, client: Tracker | None = None
) -> dict[str, Any]:
    """`{experiment, variant, variation_id, in_experiment, reason}` for `user_id`, as the gateway answers."""
    variants = experiment["variants"]
    bucket = bucket_of(
        experiment.get("seed") or experiment["key"],
        str(user_id),
        running=experiment.get("status") == "running",
        coverage=experiment.get("coverage", 1.0),
        weights=[v["weight"] for v in variants],
    )
    result = {
        "experiment": experiment["key"],
        "variant": variants[bucket.index]["key"],
        "variation_id": bucket.index,
        "in_experiment": bucket.in_experiment,
        "reason": bucket.reason,
    }
    if client is not None:
        properties = {"reason": bucket.reason}
        if experiment.get("version"):
            properties["definition_version"] = experiment["version"]
        client.track(
            "experiment_exposure",
            properties,
            user_id=str(user_id),
            experiment_key=result["experiment"],
            variant=result["variant"],
            in_experiment=bucket.in_experiment,
        )
    return result
