"""`GET /api/v1/feature/{name}` (write key): the variant of experiment `name` for a user, logged as an
`experiment_exposure` event through the ingest path (200 only after Kafka acked the exposure).

`GET /api/v1/features` (write key) hands SDKs the assignment fields of the project's experiments so they can
assign locally (`getFeatureVariant` / `get_feature_variant`) with the same result as this server.
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pravis_schemas import topics

from pravis_gateway.deps import GatewayDep, WriteKey
from pravis_gateway.experiments.assignment import assign
from pravis_gateway.experiments.deps import StoreDep
from pravis_gateway.ingest import Request as IngestRequest
from pravis_gateway.ingest import process_batch
from pravis_gateway.routes.events import publish, refused_event
from pravis_gateway.routes.responses import KEYED, JSONBody, error, errors

router = APIRouter(prefix="/api/v1", tags=["experiments"], responses=KEYED)
SDK_FIELDS = {"key", "seed", "status", "coverage", "variants"}
IdParam = Annotated[str | None, Query(min_length=1, max_length=200)]


@router.get("/feature/{name}", responses=errors(404, 503))
async def feature_variant(
    name: str,
    key: WriteKey,
    gateway: GatewayDep,
    store: StoreDep,
    request: Request,
    user_id: IdParam = None,
    anonymous_id: IdParam = None,
    session_id: IdParam = None,
) -> JSONBody:
    """Assign `user_id` (else `anonymous_id`; one of them is required, 422 without) a variant of experiment
    `name` and log the exposure."""
    unit = user_id or anonymous_id
    if not unit:
        return error(422, "user_id or anonymous_id is required")
    stored = store.cached(key.project_id, name)
    if stored is None:
        # Unknown (or, before the first load from the warehouse, not yet known): callers show the default.
        loading = "" if store.loaded.is_set() else " (definitions not loaded from the warehouse yet)"
        return error(404, f"no experiment {name!r} in project {key.project_id!r}{loading}")
    assignment = assign(stored.definition, unit)
    received_at = datetime.now(UTC)
    event_id = uuid.uuid4()
    exposure = {
        "event_id": str(event_id),
        "event_type": "experiment_exposure",
        "timestamp": received_at.isoformat(),
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "session_id": session_id,
        "experiment_key": assignment.experiment,
        "variant": assignment.variant,
        "in_experiment": assignment.in_experiment,
        "properties": {"definition_version": stored.version, "reason": assignment.reason},
    }
    ingest = IngestRequest(
        project_id=key.project_id,
        received_at=received_at,
        sent_at=None,
        client_ip=request.client.host if request.client else None,
    )
    outcome = process_batch(
        [{k: v for k, v in exposure.items() if v is not None}], ingest, gateway.limits, gateway.policies
    )
    if refusal := refused_event(outcome):
        return refusal
    if failure := await publish(gateway, topics.EVENTS, outcome.records):
        return failure
    return JSONBody(
        {
            "feature": name,
            "experiment": assignment.experiment,
            "variant": assignment.variant,
            "variation_id": assignment.variation_id,
            "in_experiment": assignment.in_experiment,
            "reason": assignment.reason,
            "version": stored.version,
            "exposure_event_id": str(event_id) if outcome.accepted else None,
        }
    )


@router.get("/features")
async def feature_definitions(key: WriteKey, store: StoreDep) -> JSONBody:
    """What SDKs need to assign locally: key, seed, status, coverage and variants of every experiment."""
    return JSONBody(
        {
            "experiments": [
                {**s.definition.model_dump(mode="json", include=SDK_FIELDS), "version": s.version}
                for s in store.cached_for(key.project_id)
            ]
        }
    )
