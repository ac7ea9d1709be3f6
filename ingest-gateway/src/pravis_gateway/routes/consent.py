"""`GET`/`PUT /api/v1/consent/{subject}`: a user's consent per category, enforced by every gateway process.

A change travels as a `consent_change` event and as a record on the `consent` topic, from which every gateway
process keeps its consent state and the loader the `consent_history` table.

Reading needs the project's secret key: the write key sits in every browser, and a subject's consent says who
uses the site and what they agreed to. Writing needs only the write key, as a consent banner does; a grant
after the subject's data was deleted must be explicit (see `pravis_gateway.consent`). A PUT carrying
`Sec-GPC: 1` records the Global Privacy Control opt-out first (see `pravis_gateway.gpc`).
"""

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pravis_schemas import ConsentCategory
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from pravis_gateway.consent import ERASURE_REFUSALS
from pravis_gateway.deps import GatewayDep, SecretKey, WriteKey
from pravis_gateway.ingest import Request as IngestRequest
from pravis_gateway.ingest import process_batch
from pravis_gateway.routes.events import count_rejected, honour_gpc, publish_outcome, refused_event
from pravis_gateway.routes.responses import KEYED, JSONBody, error, errors

router = APIRouter(prefix="/api/v1", tags=["consent"], responses=KEYED)
SubjectPath = Annotated[str, Path(min_length=1, max_length=200, description="user_id, or anonymous_id")]


class ConsentChange(BaseModel):
    """At least one category, each true or false; a category left out keeps its value."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"analytics": True, "performance": True, "feedback": False}],
            "anyOf": [{"required": [category.value]} for category in ConsentCategory],
        },
    )

    # Absent means unchanged; null, 0 or "yes" are not a choice.
    analytics: StrictBool = None  # type: ignore[assignment]
    performance: StrictBool = None  # type: ignore[assignment]
    feedback: StrictBool = None  # type: ignore[assignment]
    personalization: StrictBool = None  # type: ignore[assignment]
    source: Annotated[str | None, Field(max_length=200, description="e.g. 'cookie banner v3'")] = None
    explicit: Annotated[
        StrictBool,
        Field(
            description="The user made this choice just now (a banner click); needed to grant anything to a "
            "subject whose data was deleted"
        ),
    ] = None  # type: ignore[assignment]


class ConsentState(BaseModel):
    subject: str
    policy: str
    consent: dict[ConsentCategory, bool]


def state_of(gateway: GatewayDep, project_id: str, subject: str) -> dict:
    book = gateway.policies.consent
    return {"subject": subject, "policy": book.policy(project_id), "consent": book.state(project_id, subject)}


@router.get("/consent/{subject}", response_model=ConsentState)
async def get_consent(subject: SubjectPath, key: SecretKey, gateway: GatewayDep) -> dict:
    """The user's consent per category, with the project's default policy filled in (secret key only)."""
    return state_of(gateway, key.project_id, subject)


@router.put("/consent/{subject}", response_model=ConsentState, responses=errors(400, 409, 503))
async def put_consent(
    subject: SubjectPath, change: ConsentChange, key: WriteKey, gateway: GatewayDep, request: Request
):
    """Grant or withdraw categories (others keep their value); effective on every gateway within 1 s."""
    categories = change.model_dump(exclude_none=True, exclude={"source", "explicit"})
    if not categories:
        return error(422, "name at least one category: analytics, performance, feedback, personalization")
    now = datetime.now(UTC)
    event = {
        "event_id": str(uuid.uuid4()),
        "event_type": "consent_change",
        "timestamp": now.isoformat(),
        "user_id": subject,
        "consent": categories,
        "source": change.source,
        "explicit": change.explicit,
    }
    ingest = IngestRequest(project_id=key.project_id, received_at=now, sent_at=None, client_ip=None)
    if failure := await honour_gpc(gateway, request, ingest, [event]):
        return failure
    outcome = process_batch(
        [{k: v for k, v in event.items() if v is not None}], ingest, gateway.limits, gateway.policies
    )
    if set(outcome.rejected_by_reason) & ERASURE_REFUSALS:
        count_rejected(outcome)
        return error(409, outcome.rejected[0].error)
    if refusal := refused_event(outcome):
        return refusal
    if failure := await publish_outcome(gateway, outcome, [event], ingest):
        return failure
    return JSONBody(ConsentState(**state_of(gateway, key.project_id, subject)).model_dump(mode="json"))
