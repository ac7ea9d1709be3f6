"""Privacy worker: carries out deletion requests from the `privacy.requests` topic.

For each request it resolves the person of its subject in the identity graph (every id linked to it:
`pravis_schemas.identity.LINKED_IDS_SQL`, read when the request is carried out, never cached, so a login
between the request and its processing is covered), deletes the rows of all those ids from every personal
table (any table with a subject column, as `pravis_schemas.personal_data` defines them, the identity tables
included, except the audit and consent history), recomputes the rollups of every date the person had events
on, and records the ids covered and the row counts in `privacy_requests`. A visitor who never logged in is an
id the graph links to nothing: the request covers that id alone. The Kafka offset is committed only
after the audit row says done, so a crash mid-way repeats the request, and a repeated deletion is harmless.

A record is acted on only when the gateway's audit row vouches for it: the gateway writes the row (status
pending) with the secret key's project before it publishes the request, so a record whose id, project,
subject and kind do not match a pending row was not made by the gateway (forged by anyone who can write the
topic, or a replay of a finished request) and is refused, logged and counted, never executed. The audit row
was chosen over an HMAC signature on the record: a signature needs a secret shared by every gateway and this
worker (issued, rotated, kept from the topic's readers) and still lets a captured record be replayed unless
something remembers which requests are finished, which is what the audit row already does. Forging a row
instead needs write access to the warehouse, which could delete the rows directly anyway, so the check adds
no weaker link.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

import structlog
from clickhouse_connect.driver.client import Client
from pravis_schemas import privacy_audit, topics
from pravis_schemas.identity import LINKED_IDS_SQL
from pravis_schemas.logs import configure_logging
from pravis_schemas.messages import PrivacyRequest
from pravis_schemas.personal_data import (
    PERSONAL_TABLES_PARAMS,
    PERSONAL_TABLES_SQL,
    RETAINED_FOR_ACCOUNTABILITY,
    PersonalTable,
)
from prometheus_client import Counter
from pydantic import ValidationError
from tenacity import AsyncRetrying, wait_exponential

from pravis_rollups import clickhouse
from pravis_rollups.jobs import run_rollups
from pravis_rollups.kafka import privacy_consumer
from pravis_rollups.ops import run_with_ops
from pravis_rollups.settings import Settings, settings

log = structlog.get_logger("pravis.privacy")
REQUESTS_DONE = Counter("pravis_privacy_requests_done_total", "Deletion requests carried out")
REQUESTS_REFUSED = Counter(
    "pravis_privacy_requests_refused_total",
    "privacy.requests records not carried out because no pending audit row of the gateway vouches for them",
    ["reason"],
)
ROWS_DELETED = Counter("pravis_privacy_rows_deleted_total", "Rows deleted for privacy requests", ["table"])


@dataclass(frozen=True)
class AuditRow:
    """The newest state of one request in `privacy_requests`, as the gateway and this worker wrote it."""

    project_id: str
    subject: str
    kind: str
    status: str


def refusal_reason(request: PrivacyRequest, audit: list[AuditRow]) -> str | None:
    """Why `request` must not be carried out, or None when a pending audit row of its project vouches for it.

    `audit` holds every row with the request's id, whatever its project: an id the gateway issued in another
    project is a mismatch, not an unknown request."""
    if not audit:
        return "unknown_request"
    row = next((r for r in audit if r.project_id == request.project_id), None)
    if row is None:
        return "project_mismatch"
    if row.subject != request.subject:
        return "subject_mismatch"
    if row.kind != request.kind:
        return "kind_mismatch"
    if row.status != privacy_audit.RequestStatus.PENDING:
        return "not_pending"
    return None


def audit_rows(client: Client, request_id: str) -> list[AuditRow]:
    # FINAL: the table keeps a row per state change (ReplacingMergeTree on updated_at); the newest counts.
    rows = client.query(
        "SELECT project_id, subject, kind, status FROM privacy_requests FINAL WHERE request_id = {id:String}",
        parameters={"id": request_id},
    ).result_rows
    return [AuditRow(*row) for row in rows]


def person_ids(client: Client, request: PrivacyRequest) -> list[str]:
    """Every id of the subject's person, as the identity graph has them now."""
    params = {"project": request.project_id, "subject": request.subject}
    return [row[0] for row in client.query(LINKED_IDS_SQL, parameters=params).result_rows]


def affected_dates(client: Client, project_id: str, subjects: list[str]) -> list[date]:
    rows = client.query(
        "SELECT DISTINCT toDate(timestamp) FROM events "
        "WHERE project_id = {project:String} "
        "AND (user_id IN {subjects:Array(String)} OR anonymous_id IN {subjects:Array(String)}) "
        "ORDER BY 1",
        parameters={"project": project_id, "subjects": subjects},
    ).result_rows
    return [row[0] for row in rows]


def delete_subject(client: Client, request: PrivacyRequest) -> dict:
    """Delete every id of the person everywhere and recompute the rollups they were part of; returns the
    audit facts."""
    # Resolved before anything is deleted: the identity tables that say which ids are linked go too.
    subjects = person_ids(client, request)
    params = {"project": request.project_id, "subjects": subjects}
    dates = affected_dates(client, request.project_id, subjects)
    tables = [
        PersonalTable.from_row(r)
        for r in client.query(PERSONAL_TABLES_SQL, PERSONAL_TABLES_PARAMS).result_rows
    ]
    deleted: dict[str, int] = {}
    for table in tables:
        if table.name in RETAINED_FOR_ACCOUNTABILITY:
            continue
        count = client.query(table.count_sql(), parameters=params).result_rows[0][0]
        if count:
            client.command(table.delete_sql(), parameters=params)
            deleted[table.name] = count
            ROWS_DELETED.labels(table.name).inc(count)
    if dates:
        run_rollups(client, dates[0], dates[-1])
    return {"subjects_covered": subjects, "rows_deleted": deleted, "dates_recomputed": dates}


def record_done(client: Client, request: PrivacyRequest, facts: dict) -> None:
    row = privacy_audit.done_row(
        request,
        datetime.now(UTC),
        facts["subjects_covered"],
        facts["rows_deleted"],
        facts["dates_recomputed"],
    )
    client.insert(privacy_audit.TABLE, [row], column_names=privacy_audit.COLUMNS)


class PrivacyWorker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = asyncio.Event()

    async def run(self) -> None:
        client = await asyncio.to_thread(clickhouse.connect, self.settings.clickhouse_url)
        consumer = privacy_consumer(self.settings, topics.PRIVACY_REQUESTS)
        await consumer.start()
        self.ready.set()
        try:
            async for record in consumer:
                try:
                    request = PrivacyRequest.model_validate_json(record.value)
                except ValidationError as exc:
                    REQUESTS_REFUSED.labels("unreadable").inc()
                    log.error(
                        "privacy request refused",
                        reason="unreadable",
                        partition=record.partition,
                        offset=record.offset,
                        error=str(exc),
                    )
                    await consumer.commit()
                    continue
                await self._carry_out(client, request, record.partition, record.offset)
                await consumer.commit()
        finally:
            await consumer.stop()
            client.close()

    async def _carry_out(self, client: Client, request: PrivacyRequest, partition: int, offset: int) -> None:
        # The warehouse may be down, also while the audit row is checked: keep the request (uncommitted) and
        # try again with backoff, so an outage never turns a genuine request into a refused one.
        async for attempt in AsyncRetrying(wait=wait_exponential(multiplier=0.5, max=30)):
            with attempt:
                audit = await asyncio.to_thread(audit_rows, client, request.request_id)
                if reason := refusal_reason(request, audit):
                    break
                facts = await asyncio.to_thread(delete_subject, client, request)
                await asyncio.to_thread(record_done, client, request, facts)
        if reason:
            REQUESTS_REFUSED.labels(reason).inc()
            log.warning(
                "privacy request refused",
                reason=reason,
                request_id=request.request_id,
                project=request.project_id,
                partition=partition,
                offset=offset,
            )
            return
        REQUESTS_DONE.inc()
        log.info("deletion done", request_id=request.request_id, project=request.project_id, **facts)


def main() -> None:
    configure_logging(settings.log_format)
    worker = PrivacyWorker(settings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_with_ops(
                worker.run(), worker.ready, settings.privacy_health_host, settings.privacy_health_port
            )
        )


if __name__ == "__main__":
    main()
