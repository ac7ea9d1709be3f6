"""GDPR/CCPA user data endpoints (secret key): export everything stored about a person, delete it, follow up.

The person is every id the identity graph links to the `user_id` given (its pre-login anonymous ids, users
merged by an alias: docs/identity.md); an id linked to nothing, such as a visitor who never logged in, is a
person of its own. Export and deletion cover all of them, and say which.

Deletion is asynchronous: the request is recorded as pending, travels on `privacy.requests`, and the privacy
worker resolves the person's ids, deletes their rows from every personal table, recomputes the rollups of the
affected dates and marks the request done with the ids covered and the row counts. The person's consent is
withdrawn in the same step (for every id linked at that moment), so events that arrive later (a device still
holding a queue) are dropped at the gateway instead of re-creating the data.
"""

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pravis_schemas import ConsentCategory, topics
from pravis_schemas.messages import ConsentRecord, PrivacyRequest
from pravis_schemas.privacy_audit import RequestStatus
from starlette.concurrency import iterate_in_threadpool

from pravis_gateway import clickhouse
from pravis_gateway.deps import GatewayDep, SecretKey
from pravis_gateway.ingest import BatchOutcome
from pravis_gateway.ingest import Request as IngestRequest
from pravis_gateway.routes.events import publish, publish_outcome
from pravis_gateway.routes.responses import KEYED, JSONBody, error, errors

router = APIRouter(prefix="/api/v1/user", tags=["user data"], responses=KEYED)
SubjectQuery = Annotated[str, Query(min_length=1, max_length=200, description="user_id or anonymous_id")]


@router.get("/data", response_class=StreamingResponse)
async def export_user_data(user_id: SubjectQuery, key: SecretKey, gateway: GatewayDep) -> StreamingResponse:
    """Every row stored about the person (every id linked to `user_id`), in every personal table, as NDJSON
    (one object per row, with `_table`), streamed from ClickHouse so memory stays flat however much there is.
    The first line, `{"_table": "_person", "subject", "subjects_covered"}`, names the ids covered."""
    client = await asyncio.to_thread(gateway.warehouse)
    rows = clickhouse.export_subject(client, key.project_id, user_id)
    return StreamingResponse(
        iterate_in_threadpool(rows),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="pravis-export-{key.project_id}.ndjson"'},
    )


@router.delete("/data", status_code=202, responses=errors(503))
async def delete_user_data(user_id: SubjectQuery, key: SecretKey, gateway: GatewayDep) -> JSONBody:
    """Start deleting everything stored about the person; follow `GET /api/v1/user/data/requests/{id}`."""
    now = datetime.now(UTC)
    request = PrivacyRequest(
        request_id=uuid.uuid4().hex,
        kind="delete",
        project_id=key.project_id,
        subject=user_id,
        requested_by=key.key_id,
        requested_at=now,
    )
    client = await asyncio.to_thread(gateway.warehouse)
    await asyncio.to_thread(clickhouse.record_request, client, request)
    withdrawal = BatchOutcome(
        consent_records=[
            ConsentRecord(
                project_id=key.project_id,
                subject=user_id,
                consent=dict.fromkeys(ConsentCategory, False),
                changed_at=now,
                source=f"deletion request {request.request_id}",
                erasure_request_id=request.request_id,
            )
        ]
    )
    ingest = IngestRequest(project_id=key.project_id, received_at=now, sent_at=None, client_ip=None)
    if failure := await publish_outcome(gateway, withdrawal, [], ingest):
        return failure
    key_bytes = f"{key.project_id}:{user_id}".encode()
    if failure := await publish(gateway, topics.PRIVACY_REQUESTS, [(key_bytes, request.to_json())]):
        return failure
    return JSONBody({"request_id": request.request_id, "status": RequestStatus.PENDING}, status_code=202)


@router.get("/data/requests/{request_id}", responses=errors(404))
async def deletion_status(request_id: str, key: SecretKey, gateway: GatewayDep) -> JSONBody:
    """pending → done, with the ids covered, the rows removed per table and the rollup dates recomputed."""
    client = await asyncio.to_thread(gateway.warehouse)
    status = await asyncio.to_thread(clickhouse.request_status, client, key.project_id, request_id)
    if status is None:
        return error(404, f"no privacy request {request_id} in project {key.project_id}")
    return JSONBody(
        {
            **status,
            "requested_at": status["requested_at"].isoformat(),
            "completed_at": status["completed_at"].isoformat() if status["completed_at"] else None,
            "dates_recomputed": [d.isoformat() for d in status["dates_recomputed"]],
        }
    )
