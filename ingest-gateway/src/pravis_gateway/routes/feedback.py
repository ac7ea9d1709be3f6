"""`POST /api/v1/feedback`: one rating (1-5) with an optional comment, as the product guide specifies.

The server fills in what an SDK batch would carry (event_id, timestamp) and the feedback then travels as an
ordinary `feedback` event, so the stream tier scores its sentiment and the warehouse stores it like any event.
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from pravis_gateway.deps import GatewayDep, WriteKey
from pravis_gateway.ingest import Request as IngestRequest
from pravis_gateway.ingest import process_batch
from pravis_gateway.routes.events import publish_outcome
from pravis_gateway.routes.responses import INGEST_RESPONSES, JSONBody, error

router = APIRouter(prefix="/api/v1", tags=["feedback"])


class FeedbackSubmission(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"interaction_id": "i-123", "rating": 4, "comment": "Found my size fast", "user_id": "u-42"}
            ]
        },
    )

    rating: Annotated[int, Field(ge=1, le=5)]
    interaction_id: str | None = None
    comment: str | None = None
    context: str | None = None
    user_id: str | None = None
    anonymous_id: str | None = None
    session_id: str | None = None
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Give one to make retries idempotent")
    timestamp: AwareDatetime | None = None


class FeedbackAccepted(BaseModel):
    status: str = "ok"
    event_id: uuid.UUID


@router.post("/feedback", response_model=FeedbackAccepted, responses=INGEST_RESPONSES)
async def submit_feedback(
    submission: FeedbackSubmission, key: WriteKey, gateway: GatewayDep, request: Request
):
    received_at = datetime.now(UTC)
    event = submission.model_dump(mode="json", exclude_none=True)
    event.update(event_type="feedback", timestamp=event.get("timestamp") or received_at.isoformat())
    ingest = IngestRequest(
        project_id=key.project_id,
        received_at=received_at,
        sent_at=None,
        client_ip=request.client.host if request.client else None,
    )
    outcome = process_batch([event], ingest, gateway.limits, gateway.policies)
    if outcome.rejected:
        return error(422, outcome.rejected[0].error)
    if outcome.dropped_no_consent:
        return error(403, "the user has not consented to feedback collection")
    if failure := await publish_outcome(gateway, outcome, [event], ingest):
        return failure
    return JSONBody({"status": "ok", "event_id": str(submission.event_id)})
