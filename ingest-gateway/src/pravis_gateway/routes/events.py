"""`POST /api/v1/analytics/events`: validate a batch, publish the valid events, report the rest per index."""

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import ORJSONResponse
from pravis_schemas import (
    EnrichedEvent,
    EventBatch,
    EventError,
    RejectedEvent,
    describe_error,
    topics,
    validate_batch,
)
from pydantic import ValidationError

from pravis_gateway.deps import Publisher, SettingsDep, WriteKey
from pravis_gateway.enrich import anonymize_ip, correct_skew
from pravis_gateway.kafka import KafkaUnavailable

router = APIRouter(prefix="/api/v1")
RETRY_AFTER_SECONDS = "5"


class BodyTooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing to buffer more than `limit` bytes whatever Content-Length claims."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def error(status: int, message: str, **extra: Any) -> ORJSONResponse:
    return ORJSONResponse({"status": "error", "error": message, **extra}, status_code=status)


def split_oversize(raw_events: list[Any], limit: int) -> tuple[list[Any], list[int], list[EventError]]:
    """Events within the per-event byte limit, their original indices, and errors for the others."""
    kept, kept_index, errors = [], [], []
    for index, raw in enumerate(raw_events):
        size = len(orjson.dumps(raw))
        if size > limit:
            errors.append(EventError(index=index, error=f"event is {size} bytes; the limit is {limit}"))
        else:
            kept.append(raw)
            kept_index.append(index)
    return kept, kept_index, errors


@router.post("/analytics/events")
async def ingest_events(request: Request, key: WriteKey, settings: SettingsDep, publisher: Publisher):
    received_at = datetime.now(UTC)
    try:
        body = await read_body(request, settings.max_body_bytes)
    except BodyTooLarge:
        return error(413, f"body larger than {settings.max_body_bytes} bytes")
    try:
        batch = EventBatch.model_validate_json(body, context={"max_events": settings.max_events_per_batch})
    except ValidationError as exc:
        too_many = any(e["type"] == "too_many_events" for e in exc.errors())
        return error(413 if too_many else 400, describe_error(exc))

    candidates, original_index, rejected = split_oversize(batch.events, settings.max_event_bytes)
    valid, invalid = validate_batch(candidates)
    rejected += [EventError(index=original_index[e.index], error=e.error) for e in invalid]
    rejected.sort(key=lambda e: e.index)

    client_ip = request.client.host if request.client else None
    records = [
        (
            event.partition_key.encode(),
            EnrichedEvent(
                event=event.model_copy(
                    update={"timestamp": correct_skew(event.timestamp, batch.sent_at, received_at)}
                ),
                project_id=key.project_id,
                received_at=received_at,
                sent_at=batch.sent_at,
                ip=anonymize_ip(str(getattr(event, "ip", None) or client_ip or "")),
            ).to_json(),
        )
        for event in valid
    ]
    rejected_records = [
        (
            None,
            RejectedEvent(
                project_id=key.project_id,
                received_at=received_at,
                index=r.index,
                error=r.error,
                raw=batch.events[r.index],
            ).to_json(),
        )
        for r in rejected
    ]
    try:
        await publisher.publish(topics.EVENTS, records)
        await publisher.publish(topics.EVENTS_REJECTED, rejected_records)
    except KafkaUnavailable as exc:
        return ORJSONResponse(
            {"status": "error", "error": f"events not accepted: Kafka unavailable ({exc})"},
            status_code=503,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )

    rejected_json = [r.model_dump() for r in rejected]
    if not rejected:
        return {"status": "ok", "processed": len(records)}
    if not records:
        return ORJSONResponse({"status": "error", "processed": 0, "rejected": rejected_json}, status_code=400)
    return {"status": "partial", "processed": len(records), "rejected": rejected_json}
