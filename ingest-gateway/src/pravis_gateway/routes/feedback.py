"""`POST /api/v1/feedback`: one rating (1-5) with an optional comment, as the product guide specifies.

The server fills in what an SDK batch would carry (event_id, timestamp) and the feedback then travels as an
ordinary `feedback` event, so the stream tier scores its sentiment and the warehouse stores it like any event.
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from annotated_types import MaxLen
from fastapi import APIRouter, Request
from pravis_schemas.events import MAX_FEEDBACK_COMMENT_LENGTH, MAX_FEEDBACK_CONTEXT_LENGTH, Id
from pydantic import BaseModel, ConfigDict, Field

from pravis_gateway.deps import GatewayDep, WriteKey
from pravis_gateway.ingest import Request as IngestRequest
from pravis_gateway.ingest import process_batch
from pravis_gateway.routes.events import publish_outcome, refused_event
from pravis_gateway.routes.responses import KEYED, JSONBody, error, errors

router = APIRouter(prefix="/api/v1", tags=["feedback"], responses=KEYED)


class FeedbackSubmission(BaseModel):
    """The fields of a `feedback` event a person gives; the server stamps it with the time of receipt, so no
    client clock can put it outside the events' accepted time window."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"interaction_id": "i-123", "rating": 4, "comment": "Found my size fast", "user_id": "u-42"}
            ],
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("user_id", "anonymous_id")
            ],
        },
    )

    rating: Annotated[int, Field(ge=1, le=5)]
    interaction_id: Id | None = None
    comment: Annotated[str, MaxLen(MAX_FEEDBACK_COMMENT_LENGTH)] | None = None
    context: Annotated[str, MaxLen(MAX_FEEDBACK_CONTEXT_LENGTH)] | None = None
    user_id: Id | None = None
    anonymous_id: Id | None = None
    session_id: Id | None = None
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4, description="Give one to make retries idempotent")


class FeedbackAccepted(BaseModel):
    status: str = "ok"
    event_id: uuid.UUID


@router.post("/feedback", response_model=FeedbackAccepted, responses=errors(400, 403, 503))
async def submit_feedback(
    submission: FeedbackSubmission, key: WriteKey, gateway: GatewayDep, request: Request
):
    received_at = datetime.now(UTC)
    event = submission.model_dump(mode="json", exclude_none=True)
    event.update(event_type="feedback", timestamp=received_at.isoformat())
    ingest = IngestRequest(
        project_id=key.project_id,
        received_at=received_at,
        sent_at=None,
        client_ip=request.client.host if request.client else None,
    )
    outcome = process_batch([event], ingest, gateway.limits, gateway.policies)
    if refusal := refused_event(outcome):
        return refusal
    if outcome.dropped_no_consent:
        return error(403, "the user has not consented to feedback collection")
    if failure := await publish_outcome(gateway, outcome, [event], ingest):
        return failure
    return JSONBody({"status": "ok", "event_id": str(submission.event_id)})
