"""`GET /api/v1/feature/{name}` (write key): the variant of experiment `name` for a user, logged as an
`experiment_exposure` event through the ingest path (200 only after Kafka acked the exposure).

An experiment hashes the id given (`user_id`, else `anonymous_id`: the id the SDK used at exposure), or with
`hash_on: "person"` the person that id belongs to in the identity graph, so once a login linked the ids every
one of them gets the variant of the person. The person is never part of the answer: a write key sits in every
browser, and the person of an anonymous id is the user id it logged in as.

`GET /api/v1/features` (write key) hands SDKs the assignment fields of the project's experiments so they can
assign locally (`getFeatureVariant` / `get_feature_variant`) with the same result as this server; SDKs hash
the id they are given, so a person-hashed experiment (`hash_on` in the answer) is assigned by this endpoint.
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request
from pravis_schemas import topics

from pravis_gateway.deps import GatewayDep, WriteKey
from pravis_gateway.experiments.assignment import assign
from pravis_gateway.experiments.deps import PersonsDep, StoreDep
from pravis_gateway.experiments.persons import PersonUnavailable
from pravis_gateway.ingest import Request as IngestRequest
from pravis_gateway.ingest import process_batch
from pravis_gateway.routes.events import publish, refused_event
from pravis_gateway.routes.responses import KEYED, JSONBody, error, errors, retry_later

router = APIRouter(prefix="/api/v1", tags=["experiments"], responses=KEYED)
log = structlog.get_logger("pravis.gateway.experiments")
SDK_FIELDS = {"key", "seed", "status", "coverage", "variants", "hash_on"}
IdParam = Annotated[str | None, Query(min_length=1, max_length=200)]


@router.get("/feature/{name}", responses=errors(404, 503))
async def feature_variant(
    name: str,
    key: WriteKey,
    gateway: GatewayDep,
    store: StoreDep,
    persons: PersonsDep,
    request: Request,
    user_id: IdParam = None,
    anonymous_id: IdParam = None,
    session_id: IdParam = None,
) -> JSONBody:
    """Assign `user_id` (else `anonymous_id`; one of them is required, 422 without) a variant of experiment
    `name`, hashed on that id or, with `hash_on: "person"`, on its person (503 when the identity graph cannot
    be read), and log the exposure."""
    unit = user_id or anonymous_id
    if not unit:
        return error(422, "user_id or anonymous_id is required")
    stored = store.cached(key.project_id, name)
    if stored is None:
        # Unknown (or, before the first load from the warehouse, not yet known): callers show the default.
        loading = "" if store.loaded.is_set() else " (definitions not loaded from the warehouse yet)"
        return error(404, f"no experiment {name!r} in project {key.project_id!r}{loading}")
    if stored.definition.hash_on == "person":
        try:
            unit = await persons.person_of(key.project_id, unit)
        except PersonUnavailable as exc:
            # Hashing the bare id instead could serve (and log an exposure of) another variant than the
            # person's: the caller shows its default, as for any failed call.
            log.warning("identity graph unreadable for an experiment", experiment=name, error=str(exc))
            message = "the identity graph cannot be read to find the person, try again"
            return retry_later(gateway.settings.retry_after_s, message)
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
