"""Surveys and segments.

Admin (secret key): `PUT /api/v1/surveys/{key}` and `PUT /api/v1/segments/{key}` save a new version of a
definition (422 with every reason, one per field, for an invalid one); `GET` on the same paths reads the
newest version back, or with `history=true` every version; `GET /api/v1/segments` lists the project's
segments. `PUT /api/v1/feature-requests/status` sets a request's status (open/planned/done, 422 otherwise) and
`GET /api/v1/feature-requests` answers the ranked board with the statuses.

SDKs (write key): `GET /api/v1/surveys?user_id=...&anonymous_id=...` answers the surveys this user should see
now, with their questions, from the gateway's memory (`pravis_gateway.surveys.book`): no warehouse round
trip, as `GET /api/v1/feature/{name}`. A user who withdrew the `feedback` consent gets none.
"""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pravis_schemas.events import ConsentCategory
from pravis_schemas.feature_requests import StatusChange
from pravis_schemas.surveys import ReachedFunnelStep, SegmentDefinition
from pydantic import ValidationError

from pravis_gateway.clickhouse import WarehouseUnavailable
from pravis_gateway.deps import GatewayDep, SecretKey, WriteKey
from pravis_gateway.routes.responses import KEYED, JSONBody, error, errors
from pravis_gateway.surveys.deps import SurveyStoreDep, surveys_lifespan
from pravis_gateway.surveys.store import SEGMENTS, SURVEYS, Table

router = APIRouter(prefix="/api/v1", tags=["surveys"], lifespan=surveys_lifespan, responses=KEYED)

UNAVAILABLE = "survey definitions unavailable: warehouse unreachable or not migrated ({})"
IdParam = Annotated[str | None, Query(min_length=1, max_length=200)]
SURVEY_EXAMPLE = {
    "name": "Quarterly UX survey",
    "status": "running",
    "questions": [
        {"id": "nps", "type": "nps", "text": "How likely are you to recommend us?"},
        {"id": "why", "type": "open_text", "text": "What should we improve?", "required": False},
    ],
    "segments": ["regulars"],
    "sample_percent": 50,
    "schedule": {"recurrence": "quarterly"},
    "cap": {"max_dismissals": 2, "days_between_surveys": 14},
}
STATUS_EXAMPLE = {"title": "Dark mode", "status": "planned"}
SEGMENT_EXAMPLE = {"conditions": [{"type": "active_days", "min_days": 5, "of_last_days": 30}]}


def field_errors(exc: ValidationError) -> list[str]:
    """One reason per field: `questions.1.scale: ...`."""
    reasons = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        where = ".".join(str(part) for part in err["loc"])
        reasons.append(f"{where}: {err['msg']}" if where else err["msg"])
    return reasons


async def _funnel_reasons(segment: SegmentDefinition, project_id: str, store) -> list[str]:
    """A `funnel_step` condition must name a saved funnel of the project and one of its steps."""
    wanted = [(i, c) for i, c in enumerate(segment.conditions) if isinstance(c, ReachedFunnelStep)]
    if not wanted:
        return []
    steps = await store.funnel_steps(project_id)
    reasons = []
    for i, condition in wanted:
        if condition.funnel_key not in steps:
            reasons.append(f"conditions.{i}.funnel_key: no funnel {condition.funnel_key!r} in the project")
        elif condition.step > steps[condition.funnel_key]:
            count = steps[condition.funnel_key]
            reasons.append(f"conditions.{i}.step: funnel {condition.funnel_key!r} has steps 1..{count}")
    return reasons


async def _put(table: Table, key: str, admin, store, definition: dict[str, Any]) -> JSONBody:
    if definition.get("key", key) != key:
        return error(422, f"key in the body ({definition['key']!r}) differs from the URL ({key!r})")
    try:
        parsed = table.model.model_validate({**definition, "key": key})
    except ValidationError as exc:
        reasons = field_errors(exc)
        body = {"status": "error", "error": f"invalid {table.name[:-1]} definition", "reasons": reasons}
        return JSONBody(body, status_code=422)
    try:
        reasons = await _funnel_reasons(parsed, admin.project_id, store) if table is SEGMENTS else []
        if reasons:
            body = {"status": "error", "error": "invalid segment definition", "reasons": reasons}
            return JSONBody(body, status_code=422)
        stored, created = await store.save(table, admin.project_id, parsed)
    except WarehouseUnavailable as exc:
        return error(503, UNAVAILABLE.format(exc), retry_after=5)
    body = {"status": "ok", "created": created, **stored.model_dump(mode="json")}
    return JSONBody(body, status_code=201 if created else 200)


async def _get(table: Table, key: str, admin, store, history: bool) -> JSONBody:
    try:
        versions = await store.history(table, admin.project_id, key)
    except WarehouseUnavailable as exc:
        return error(503, UNAVAILABLE.format(exc), retry_after=5)
    if not versions:
        return error(404, f"no {table.name[:-1]} {key!r} in project {admin.project_id!r}")
    if history:
        return JSONBody({"status": "ok", "versions": [v.model_dump(mode="json") for v in versions]})
    return JSONBody({"status": "ok", **versions[-1].model_dump(mode="json")})


@router.put("/surveys/{key}", responses={201: {"description": "A new version was saved"}, **errors(400, 503)})
async def put_survey(
    key: str,
    admin: SecretKey,
    store: SurveyStoreDep,
    definition: Annotated[dict[str, Any], Body(openapi_examples={"quarterly": {"value": SURVEY_EXAMPLE}})],
) -> JSONBody:
    """Save a survey definition as its next version (an identical definition keeps its version)."""
    return await _put(SURVEYS, key, admin, store, definition)


@router.get("/surveys/{key}", responses=errors(404, 503))
async def get_survey(
    key: str, admin: SecretKey, store: SurveyStoreDep, history: Annotated[bool, Query()] = False
) -> JSONBody:
    """The newest version of one survey, or with `history=true` every version, oldest first."""
    return await _get(SURVEYS, key, admin, store, history)


@router.put(
    "/segments/{key}", responses={201: {"description": "A new version was saved"}, **errors(400, 503)}
)
async def put_segment(
    key: str,
    admin: SecretKey,
    store: SurveyStoreDep,
    definition: Annotated[dict[str, Any], Body(openapi_examples={"regulars": {"value": SEGMENT_EXAMPLE}})],
) -> JSONBody:
    """Save a segment definition; its members are computed at the scheduler's next segment refresh."""
    return await _put(SEGMENTS, key, admin, store, definition)


@router.get("/segments/{key}", responses=errors(404, 503))
async def get_segment(
    key: str, admin: SecretKey, store: SurveyStoreDep, history: Annotated[bool, Query()] = False
) -> JSONBody:
    return await _get(SEGMENTS, key, admin, store, history)


@router.get("/segments", responses=errors(503))
async def list_segments(admin: SecretKey, store: SurveyStoreDep) -> JSONBody:
    try:
        latest = await store.latest(SEGMENTS, admin.project_id)
    except WarehouseUnavailable as exc:
        return error(503, UNAVAILABLE.format(exc), retry_after=5)
    return JSONBody({"status": "ok", "segments": [s.model_dump(mode="json") for s in latest]})


@router.put("/feature-requests/status", responses=errors(400, 503))
async def set_request_status(
    admin: SecretKey,
    store: SurveyStoreDep,
    change: Annotated[dict[str, Any], Body(openapi_examples={"planned": {"value": STATUS_EXAMPLE}})],
) -> JSONBody:
    """Set a feature request's status (open/planned/done); `title` is any spelling of the request's title."""
    try:
        parsed = StatusChange.model_validate(change)
    except ValidationError as exc:
        body = {"status": "error", "error": "invalid status change", "reasons": field_errors(exc)}
        return JSONBody(body, status_code=422)
    try:
        await store.set_request_status(admin.project_id, parsed)
    except WarehouseUnavailable as exc:
        return error(503, UNAVAILABLE.format(exc), retry_after=5)
    return JSONBody({"status": "ok", **parsed.model_dump()})


@router.get("/feature-requests", responses=errors(503))
async def request_board(
    admin: SecretKey, store: SurveyStoreDep, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> JSONBody:
    """The project's feature requests ranked by votes, then by votes weighted by the voters' activity."""
    try:
        board = await store.request_board(admin.project_id, limit)
    except WarehouseUnavailable as exc:
        return error(503, UNAVAILABLE.format(exc), retry_after=5)
    return JSONBody({"status": "ok", "requests": board})


@router.get("/surveys")
async def surveys_for_user(
    key: WriteKey, gateway: GatewayDep, user_id: IdParam = None, anonymous_id: IdParam = None
) -> JSONBody:
    """The surveys `user_id` (else `anonymous_id`; 422 without either) should see now: at most one, with its
    questions. `ready` is false until the gateway first loaded the warehouse's view (no survey is shown
    then: a capped user must not see one just because this gateway restarted)."""
    ids = [i for i in (user_id, anonymous_id) if i]
    if not ids:
        return error(422, "user_id or anonymous_id is required")
    book = gateway.policies.surveys
    consented = gateway.policies.consent.allows(
        key.project_id, user_id, anonymous_id, ConsentCategory.FEEDBACK
    )
    if not book.loaded or not consented:
        return JSONBody({"surveys": [], "ready": book.loaded})
    return JSONBody(
        {
            "surveys": [book.answer(s) for s in book.for_user(key.project_id, ids, datetime.now(UTC))],
            "ready": True,
        }
    )
