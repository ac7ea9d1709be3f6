"""The gateway's only ClickHouse access: streaming a user's data out, the privacy-request audit table, and the
identity facts an alias is judged by."""

from collections.abc import Callable, Iterator

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as ClickHouseError
from pravis_schemas import privacy_audit
from pravis_schemas.clickhouse_url import clickhouse_connect_from_url
from pravis_schemas.messages import PrivacyRequest
from pravis_schemas.personal_data import (
    PERSONAL_TABLES_PARAMS,
    PERSONAL_TABLES_SQL,
    STAGING_TABLE_PREFIX,
    PersonalTable,
)

from pravis_gateway.identity import IdentityFacts

EXPORT_CHUNK_BYTES = 256 * 1024


def connect(url: str) -> Client:
    """A client for a ClickHouse HTTP URL such as `https://user:pass@host:8443/pravis` (path = database)."""
    # No session: route handlers share this client across threads, and a session refuses concurrent queries.
    return clickhouse_connect_from_url(url, autogenerate_session_id=False)


def export_subject(client: Client, project_id: str, subject: str) -> Iterator[bytes]:
    """NDJSON of every row about the person in every personal table, each tagged with `_table`; streamed."""
    tables = [
        PersonalTable.from_row(r)
        for r in client.query(PERSONAL_TABLES_SQL, PERSONAL_TABLES_PARAMS).result_rows
    ]
    for table in tables:
        if table.name.startswith(STAGING_TABLE_PREFIX):
            continue
        with client.raw_stream(
            table.select_sql(),
            parameters={"table": table.name, "project": project_id, "subject": subject},
            fmt="JSONEachRow",
        ) as stream:
            yield from iter(lambda: stream.read(EXPORT_CHUNK_BYTES), b"")


def record_request(client: Client, request: PrivacyRequest) -> None:
    """The audit row (pending) that vouches for `request` before it is published."""
    client.insert(
        privacy_audit.TABLE, [privacy_audit.pending_row(request)], column_names=privacy_audit.COLUMNS
    )


def request_status(client: Client, project_id: str, request_id: str) -> dict | None:
    result = client.query(
        "SELECT request_id, kind, subject, status, requested_by, requested_at, completed_at, rows_deleted, "
        "dates_recomputed FROM privacy_requests FINAL "
        "WHERE project_id = {project:String} AND request_id = {id:String}",
        parameters={"project": project_id, "id": request_id},
    )
    return dict(zip(result.column_names, result.result_rows[0], strict=True)) if result.result_rows else None


class WarehouseUnavailable(Exception):
    """ClickHouse did not answer; a request that needs it must be retried later, its input is fine."""


HISTORY_SQL = (
    "SELECT user_id FROM identity_users "
    "WHERE project_id = {project:String} AND user_id IN {ids:Array(String)} "
    "GROUP BY user_id HAVING sum(events) > 0"
)
MERGED_PERSONS_SQL = (
    "SELECT user_id, argMax(person_id, version) FROM identity_merges "
    "WHERE project_id = {project:String} AND user_id IN {ids:Array(String)} GROUP BY user_id"
)


def identity_facts(connect: Callable[[], Client], project_id: str, ids: list[str]) -> IdentityFacts:
    """Which of `ids` have a history as a user (events other than aliases) and the person of the merged ones:
    two look-ups by primary key. Raises `WarehouseUnavailable` when ClickHouse cannot be asked."""
    parameters = {"project": project_id, "ids": ids}
    try:
        client = connect()
        with_history = {row[0] for row in client.query(HISTORY_SQL, parameters=parameters).result_rows}
        person = dict(client.query(MERGED_PERSONS_SQL, parameters=parameters).result_rows)
    except ClickHouseError as exc:
        raise WarehouseUnavailable(str(exc)[:300]) from exc
    return IdentityFacts(frozenset(with_history), person)
