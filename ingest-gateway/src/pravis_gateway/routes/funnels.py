"""Funnel admin (secret key): `PUT /api/v1/funnels/{key}` saves a new version of a definition (invalid ones
are refused with 422 and the reasons), `GET /api/v1/funnels[/{key}]` reads them back from the warehouse,
`GET /api/v1/funnels/{key}?history=true` lists every version. The funnels themselves are computed in the
warehouse (docs/funnels.md); the gateway keeps no copy, since nothing on its hot path reads them."""

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from clickhouse_connect.driver.exceptions import Error as ClickHouseError
from fastapi import APIRouter, Body, Query
from pravis_schemas import describe_error
from pravis_schemas.funnels import (
    FUNNEL_COLUMNS,
    FUNNEL_HISTORY_SQL,
    LATEST_FUNNELS_SQL,
    FunnelDefinition,
    StoredFunnel,
    stored_funnel,
)
from pydantic import ValidationError

from pravis_gateway.deps import GatewayDep, SecretKey
from pravis_gateway.routes.responses import KEYED, JSONBody, error, errors
from pravis_gateway.state import Gateway

router = APIRouter(prefix="/api/v1", tags=["funnels"], responses=KEYED)

UNAVAILABLE = "funnel definitions unavailable: warehouse unreachable or not migrated ({})"
EXAMPLE = {
    "name": "Voice checkout",
    "window_s": 1800,
    "order": "ordered",
    "count_by": "person",
    "steps": [
        {"event_type": "voice_request", "filters": [{"property": "intent", "equals": "checkout"}]},
        {"event_type": "feature_use", "filters": [{"property": "feature_name", "equals": "checkout"}]},
        {"event_type": "order_completed"},
    ],
    "exclusions": [{"event_type": "error", "from_step": 2}],
}


async def _query(gateway: Gateway, sql: str, parameters: dict[str, Any]) -> list[StoredFunnel]:
    rows = await asyncio.to_thread(lambda: gateway.warehouse().query(sql, parameters=parameters).result_rows)
    return [stored_funnel(row) for row in rows]


def _body(stored: StoredFunnel) -> dict[str, Any]:
    return stored.model_dump(mode="json")


@router.put("/funnels/{key}", responses={201: {"description": "A new version was saved"}, **errors(400, 503)})
async def put_funnel(
    key: str,
    admin: SecretKey,
    gateway: GatewayDep,
    definition: Annotated[dict[str, Any], Body(openapi_examples={"checkout": {"value": EXAMPLE}})],
) -> JSONBody:
    """Save a definition as the funnel's next version (an identical definition keeps its version).

    Versions are numbered by reading the newest one first: two admins saving the same key at the same instant
    could both write version n+1; the later row replaces the earlier (ReplacingMergeTree)."""
    if definition.get("key", key) != key:
        return error(422, f"key in the body ({definition['key']!r}) differs from the URL ({key!r})")
    try:
        parsed = FunnelDefinition.model_validate({**definition, "key": key})
    except ValidationError as exc:
        return error(422, f"invalid funnel definition: {describe_error(exc)}")
    try:
        versions = await _query(gateway, FUNNEL_HISTORY_SQL, {"project": admin.project_id, "key": key})
        if versions and versions[-1].definition == parsed:
            return JSONBody({"status": "ok", "created": False, **_body(versions[-1])})
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # DateTime64(3) keeps milliseconds
        stored = StoredFunnel(
            project_id=admin.project_id,
            version=(versions[-1].version if versions else 0) + 1,
            created_at=now.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],  # as the warehouse's toString reads it back
            definition=parsed,
        )
        row = [admin.project_id, key, stored.version, orjson.dumps(_body(stored)["definition"]).decode(), now]
        await asyncio.to_thread(
            lambda: gateway.warehouse().insert("funnels", [row], column_names=FUNNEL_COLUMNS)
        )
    except ClickHouseError as exc:
        return error(503, UNAVAILABLE.format(str(exc)[:300]), retry_after=5)
    return JSONBody({"status": "ok", "created": True, **_body(stored)}, status_code=201)


@router.get("/funnels/{key}", responses=errors(404, 503))
async def get_funnel(
    key: str, admin: SecretKey, gateway: GatewayDep, history: Annotated[bool, Query()] = False
) -> JSONBody:
    """The newest version of one funnel, or with `history=true` every version, oldest first."""
    try:
        versions = await _query(gateway, FUNNEL_HISTORY_SQL, {"project": admin.project_id, "key": key})
    except ClickHouseError as exc:
        return error(503, UNAVAILABLE.format(str(exc)[:300]), retry_after=5)
    if not versions:
        return error(404, f"no funnel {key!r} in project {admin.project_id!r}")
    if history:
        return JSONBody({"status": "ok", "versions": [_body(v) for v in versions]})
    return JSONBody({"status": "ok", **_body(versions[-1])})


@router.get("/funnels", responses=errors(503))
async def list_funnels(admin: SecretKey, gateway: GatewayDep) -> JSONBody:
    """The newest version of every funnel of the key's project, by key."""
    try:
        latest = await _query(gateway, LATEST_FUNNELS_SQL, {"project": admin.project_id})
    except ClickHouseError as exc:
        return error(503, UNAVAILABLE.format(str(exc)[:300]), retry_after=5)
    return JSONBody(
        {"status": "ok", "funnels": [_body(s) for s in sorted(latest, key=lambda s: s.definition.key)]}
    )
