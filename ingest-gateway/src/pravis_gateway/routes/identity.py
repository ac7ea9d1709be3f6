"""`POST /api/v1/identity/alias` (secret key): merge two ids of one person from the boutique's servers.

The write key's `alias` events may not merge two identified users who each have a history (rule 4 of
docs/identity.md): that is how a shared device or a wrong login would fuse two people. A server that knows
better (support merging duplicate accounts) sends the alias here with `"force": true`; the event is published
with `forced: true`, a marker only this route sets. Without `force` the same rule applies as on the events
endpoint, answered as a 422 with the reason.
"""

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from pravis_gateway.clickhouse import WarehouseUnavailable
from pravis_gateway.deps import GatewayDep, SecretKey
from pravis_gateway.ingest import Request as IngestRequest
from pravis_gateway.ingest import process_batch
from pravis_gateway.routes.events import (
    publish_outcome,
    refused_aliases,
    refused_event,
    warehouse_unavailable,
)
from pravis_gateway.routes.responses import KEYED, JSONBody, error, errors

router = APIRouter(prefix="/api/v1/identity", tags=["identity"], responses=KEYED)
Id = Annotated[str, Field(min_length=1, max_length=200)]


class AliasRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"user_id": "u-11", "previous_id": "u-9", "force": True}]},
    )

    project_id: Id | None = Field(None, description="The secret key's project; refused if it names another")
    user_id: Id = Field(description="The id to keep")
    previous_id: Id = Field(description="The id merged into it: an anonymous id or another user id")
    force: bool = Field(False, description="Merge even two users who each have a history of their own")


@router.post("/alias", responses=errors(400, 403, 503))
async def alias(body: AliasRequest, key: SecretKey, gateway: GatewayDep) -> JSONBody:
    """Publish an `alias` event; 200 once Kafka acknowledged it, the merge follows within a loader batch."""
    if body.project_id not in (None, key.project_id):
        return error(422, f"the key is for project {key.project_id!r}, not {body.project_id!r}")
    now = datetime.now(UTC)
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": "alias",
        "timestamp": now.isoformat(),
        "user_id": body.user_id,
        "previous_id": body.previous_id,
    }
    ingest = IngestRequest(
        project_id=key.project_id, received_at=now, sent_at=None, client_ip=None, forced_alias=body.force
    )
    if not body.force:
        try:
            refused = await refused_aliases(gateway, key.project_id, [event])
        except WarehouseUnavailable as exc:
            return warehouse_unavailable(gateway, exc)
        ingest = dataclasses.replace(ingest, refused_aliases=refused)
    outcome = process_batch([event], ingest, gateway.limits, gateway.policies)
    if refusal := refused_event(outcome):
        return refusal
    if not outcome.accepted:
        return error(
            403, f"{body.user_id!r} has not consented to analytics, which identity links are part of"
        )
    if failure := await publish_outcome(gateway, outcome, [event], ingest):
        return failure
    return JSONBody({"status": "ok", "event_id": event["event_id"], "forced": body.force})
