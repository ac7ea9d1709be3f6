"""`POST /api/v1/analytics/events`: validate a batch, publish the valid events, report the rest per index."""

import asyncio
import dataclasses
import time
import zlib
from datetime import UTC, datetime

import structlog
from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import APIRouter, Request
from pravis_schemas import EventBatch, describe_error, topics
from pravis_schemas.messages import ConsentRecord
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from pravis_gateway import clickhouse, gpc, metrics
from pravis_gateway.body import BodyTooLarge, UnsupportedEncoding, read_body
from pravis_gateway.clickhouse import WarehouseUnavailable
from pravis_gateway.deps import get_gateway, presented_key_of, verify_write_key
from pravis_gateway.identity import AliasPair, aliases_in, ids_of, refusals
from pravis_gateway.ingest import BatchOutcome, parse_batch, process_batch
from pravis_gateway.ingest import Request as IngestRequest
from pravis_gateway.kafka import KafkaUnavailable
from pravis_gateway.routes.responses import (
    EVENTS_RESPONSES,
    KEYED,
    IngestResult,
    JSONBody,
    error,
    retry_later,
)
from pravis_gateway.state import Gateway

router = APIRouter(prefix="/api/v1", tags=["ingest"], responses=KEYED)
log = structlog.get_logger("pravis.gateway")


async def publish(gateway: Gateway, topic: str, records: list) -> JSONBody | None:
    """None once Kafka acked, else the 503 to send (never a 200 for unacknowledged events)."""
    try:
        await gateway.publisher.publish(topic, records)
    except KafkaUnavailable as exc:
        metrics.KAFKA_ERRORS.inc()
        log.warning("kafka publish failed", topic=topic, records=len(records), error=str(exc))
        return retry_later(gateway.settings.retry_after_s, f"events not accepted: Kafka unavailable ({exc})")
    return None


async def for_the_person(gateway: Gateway, records: list[ConsentRecord]) -> list[ConsentRecord]:
    """`records` plus, for each withdrawal, its copies for the other ids of the subject's person, which the
    identity graph in the warehouse knows (a withdrawal follows the person: `pravis_gateway.consent`)."""
    extended = list(records)
    for record in records:
        if all(record.consent.values()):
            continue
        linked = await asyncio.to_thread(
            lambda r=record: clickhouse.person_ids(gateway.warehouse(), r.project_id, r.subject)
        )
        extended += gateway.policies.consent.extend_withdrawal(record, linked)
    return extended


async def publish_outcome(gateway: Gateway, outcome: BatchOutcome, raw_events: list, request: IngestRequest):
    """Publish what a batch produced; None when every accepted event and consent change was acked, else a 503.

    Consent changes apply to this process's state only after Kafka acked them; the other gateway processes
    learn them from the `consent` topic. A batch that withdraws consent needs the warehouse to find the other
    ids of the person: while it cannot be read the batch is answered 503 and nothing of it is published, so
    the SDK's retry records the withdrawal whole rather than for one id only.
    """
    count_rejected(outcome)
    try:
        consent_records = await for_the_person(gateway, outcome.consent_records)
    except ClickHouseError as exc:
        # The warehouse's error stays in the log: it names hosts and databases a browser need not see.
        log.warning("identity graph unreadable for a withdrawal", error=str(exc))
        message = "consent change not accepted: the identity graph cannot be read, try again"
        return retry_later(gateway.settings.retry_after_s, message)
    if failure := await publish(gateway, topics.EVENTS, outcome.records):
        return failure
    if consent_records:
        consent = [(r.key, r.to_json()) for r in consent_records]
        if failure := await publish(gateway, topics.CONSENT, consent):
            return failure
        for record in consent_records:
            gateway.policies.consent.apply(record)
    if outcome.rejected:
        # Best effort: the inspection copy of refused events must not turn an accepted batch into a 503.
        rejected = outcome.rejected_records(raw_events, request.project_id, request.received_at)
        await publish(gateway, topics.EVENTS_REJECTED, rejected)
    metrics.EVENTS_ACCEPTED.labels(request.project_id).inc(outcome.accepted)
    metrics.EVENTS_DROPPED_NO_CONSENT.inc(outcome.dropped_no_consent)
    return None


def count_rejected(outcome: BatchOutcome) -> None:
    """Count refused events by reason, also where a route answers their refusal without publishing."""
    for reason, count in outcome.rejected_by_reason.items():
        metrics.EVENTS_REJECTED.labels(reason).inc(count)


def refused_event(outcome: BatchOutcome) -> JSONBody | None:
    """The 422 of a route that posts one event built from its request, counted by reason; None if accepted."""
    if not outcome.rejected:
        return None
    count_rejected(outcome)
    return error(422, outcome.rejected[0].error)


def refuse(status: int, reason: str, message: str, retry_after: int | None = None) -> JSONBody:
    metrics.REFUSALS.labels(reason).inc()
    return error(status, message, retry_after=retry_after)


async def honour_gpc(
    gateway: Gateway, request: Request, ingest: IngestRequest, raw_events: list
) -> JSONBody | None:
    """Record the Global Privacy Control opt-out of the request's users before anything else of it is judged;
    None when there was nothing to record or Kafka acked it, else the 503."""
    if not gpc.signalled(request.headers):
        return None
    subjects = gpc.subjects_of(raw_events)
    categories = gateway.settings.gpc_opt_out_categories
    opt_outs = gpc.opt_out_events(
        gateway.policies.consent, ingest.project_id, subjects, categories, ingest.received_at
    )
    if not opt_outs:
        return None
    on_server_clock = dataclasses.replace(ingest, sent_at=None)
    outcome = process_batch(opt_outs, on_server_clock, gateway.limits, gateway.policies)
    if failure := await publish_outcome(gateway, outcome, opt_outs, on_server_clock):
        return failure
    metrics.GPC_OPT_OUTS.inc(len(outcome.consent_records))
    return None


async def refused_aliases(gateway: Gateway, project_id: str, raw_events: list) -> dict[AliasPair, str]:
    """The batch's aliases that rule 4 refuses (docs/identity.md); the warehouse is asked only when the batch
    holds an alias. Raises `WarehouseUnavailable` when it cannot be asked."""
    pairs = aliases_in(raw_events)
    if not pairs:
        return {}
    facts = await asyncio.to_thread(clickhouse.identity_facts, gateway.warehouse, project_id, ids_of(pairs))
    return refusals(pairs, facts)


def warehouse_unavailable(gateway: Gateway, exc: WarehouseUnavailable) -> JSONBody:
    """503: an alias could not be checked. The input is fine, so the client keeps it and retries."""
    log.warning("warehouse unavailable for an alias check", error=str(exc))
    message = f"aliases not accepted: the warehouse they are checked against is unavailable ({exc})"
    return refuse(503, "warehouse_unavailable", message, retry_after=gateway.settings.retry_after_s)


@router.post(
    "/analytics/events",
    response_model=IngestResult,
    responses=EVENTS_RESPONSES,
    openapi_extra={
        # The key is read by `presented_key_of` rather than a dependency (see `ingest_events`): declared here.
        "security": [{"WriteKey": []}, {"WriteKeyQuery": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": EventBatch.model_json_schema(),
                    "examples": IngestResult.examples(),
                },
            },
        },
    },
)
async def ingest_events(request: Request):
    """Accept a batch of events. 200 only after Kafka acknowledged every accepted event.

    `navigator.sendBeacon` cannot set headers or a JSON content type: it may post the same JSON as
    `text/plain` (or any content type), with the write key in `?api_key=` or the body's `api_key`. The body
    may be gzip- or deflate-compressed (`Content-Encoding`).
    """
    # The busiest route takes no dependencies: solving them cost a fifth of a one-event request's CPU.
    started = time.perf_counter()
    response = await _ingest(request, get_gateway(request), presented_key_of(request))
    metrics.REQUESTS.labels("events", str(response.status_code)).inc()
    metrics.LATENCY.labels("events").observe(time.perf_counter() - started)
    return response


async def _ingest(request: Request, gateway: Gateway, presented: str | None) -> JSONBody:
    settings = gateway.settings
    received_at = datetime.now(UTC)
    key = verify_write_key(gateway, presented) if presented else None
    try:
        body = await read_body(request, settings.max_body_bytes)
    except BodyTooLarge:
        return refuse(413, "body_too_large", f"body larger than {settings.max_body_bytes} bytes")
    except UnsupportedEncoding as exc:
        return refuse(415, "unsupported_encoding", f"unsupported Content-Encoding {exc}; use gzip or deflate")
    except zlib.error as exc:
        return refuse(400, "bad_compression", f"body could not be decompressed: {exc}")
    except ClientDisconnect:
        # Not a refusal to count: the client left, or BodyLimits cut it off and counted why.
        return error(400, "the client went away before sending the whole body")
    try:
        batch = parse_batch(body, settings.max_events_per_batch)
    except ValidationError as exc:
        if key is None:
            verify_write_key(gateway, None)
        if any(e["type"] == "too_many_events" for e in exc.errors()):
            return refuse(413, "too_many_events", describe_error(exc))
        return refuse(400, "invalid_body", describe_error(exc))
    key = key or verify_write_key(gateway, batch.api_key)

    if wait := gateway.limiter.retry_after(key.key_id, len(batch.events), time.monotonic()):
        message = f"rate limit of {settings.rate_limit_events_per_s:g} events/s exceeded"
        return refuse(429, "rate_limited", message, retry_after=wait)

    metrics.BATCH_SIZE.observe(len(batch.events))
    ingest = IngestRequest(
        project_id=key.project_id,
        received_at=received_at,
        sent_at=batch.sent_at,
        client_ip=request.client.host if request.client else None,
    )
    if failure := await honour_gpc(gateway, request, ingest, batch.events):
        return failure
    try:
        refused = await refused_aliases(gateway, ingest.project_id, batch.events)
    except WarehouseUnavailable as exc:
        return warehouse_unavailable(gateway, exc)
    ingest = dataclasses.replace(ingest, refused_aliases=refused)
    outcome = process_batch(batch.events, ingest, gateway.limits, gateway.policies)
    if failure := await publish_outcome(gateway, outcome, batch.events, ingest):
        return failure
    result = IngestResult.of(outcome.accepted, outcome.rejected, outcome.dropped_no_consent)
    return JSONBody(
        result.model_dump(exclude_none=True), status_code=400 if result.status == "error" else 200
    )
