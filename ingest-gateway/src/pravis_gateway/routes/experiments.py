"""Experiment admin (secret key): `PUT /api/v1/experiments/{key}` saves a new version of a definition (invalid
ones are refused with 422 and the reasons), `GET /api/v1/experiments[/{key}]` reads them back from the
warehouse. `GET /api/v1/experiments/{key}?history=true` lists every version."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pravis_schemas import describe_error
from pravis_schemas.experiments import ExperimentDefinition, StoredExperiment
from pydantic import ValidationError

from pravis_gateway.clickhouse import WarehouseUnavailable
from pravis_gateway.deps import SecretKey
from pravis_gateway.experiments.deps import StoreDep, experiments_lifespan
from pravis_gateway.routes.responses import KEYED, JSONBody, error, errors

router = APIRouter(prefix="/api/v1", tags=["experiments"], lifespan=experiments_lifespan, responses=KEYED)

UNAVAILABLE = "experiment definitions unavailable: warehouse unreachable or not migrated ({})"
EXAMPLE = {
    "name": "Bigger checkout button",
    "status": "running",
    "coverage": 1.0,
    "variants": [{"key": "control", "weight": 0.5}, {"key": "big-button", "weight": 0.5}],
    "goals": [
        {"name": "checkout", "event_type": "button_click", "property": "button_id", "equals": "checkout"},
        {"name": "ordered", "event_type": "order_completed"},
        {"name": "revenue", "event_type": "order_completed", "value_property": "revenue"},
    ],
}


def _body(stored: StoredExperiment) -> dict[str, Any]:
    return stored.model_dump(mode="json")


@router.put(
    "/experiments/{key}", responses={201: {"description": "A new version was saved"}, **errors(400, 503)}
)
async def put_experiment(
    key: str,
    admin: SecretKey,
    store: StoreDep,
    definition: Annotated[dict[str, Any], Body(openapi_examples={"checkout": {"value": EXAMPLE}})],
) -> JSONBody:
    """Save a definition as the experiment's next version (an identical definition keeps its version)."""
    if definition.get("key", key) != key:
        return error(422, f"key in the body ({definition['key']!r}) differs from the URL ({key!r})")
    try:
        parsed = ExperimentDefinition.model_validate({**definition, "key": key})
    except ValidationError as exc:
        return error(422, f"invalid experiment definition: {describe_error(exc)}")
    try:
        stored, created = await store.save(admin.project_id, parsed)
    except WarehouseUnavailable as exc:
        return error(503, UNAVAILABLE.format(exc), retry_after=5)
    return JSONBody(
        {"status": "ok", "created": created, **_body(stored)}, status_code=201 if created else 200
    )


@router.get("/experiments/{key}", responses=errors(404, 503))
async def get_experiment(
    key: str, admin: SecretKey, store: StoreDep, history: Annotated[bool, Query()] = False
) -> JSONBody:
    """The newest version of one experiment, or with `history=true` every version, oldest first."""
    try:
        versions = await store.history(admin.project_id, key)
    except WarehouseUnavailable as exc:
        return error(503, UNAVAILABLE.format(exc), retry_after=5)
    if not versions:
        return error(404, f"no experiment {key!r} in project {admin.project_id!r}")
    if history:
        return JSONBody({"status": "ok", "versions": [_body(v) for v in versions]})
    return JSONBody({"status": "ok", **_body(versions[-1])})


@router.get("/experiments", responses=errors(503))
async def list_experiments(admin: SecretKey, store: StoreDep) -> JSONBody:
    """The newest version of every experiment of the key's project."""
    try:
        await store.refresh()
    except WarehouseUnavailable as exc:
        return error(503, UNAVAILABLE.format(exc), retry_after=5)
    return JSONBody({"status": "ok", "experiments": [_body(s) for s in store.cached_for(admin.project_id)]})
