"""The gateway's ClickHouse access besides experiment definitions: streaming a user's data out, the
privacy-request audit table, the identity facts an alias is judged by, and the person an id belongs to."""

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, suppress
from typing import Any, Protocol

import orjson
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as ClickHouseError
from pravis_schemas import privacy_audit
from pravis_schemas.clickhouse_url import clickhouse_connect_from_url
from pravis_schemas.identity import LINKED_IDS_SQL
from pravis_schemas.messages import PrivacyRequest
from pravis_schemas.personal_data import (
    PERSONAL_TABLES_PARAMS,
    PERSONAL_TABLES_SQL,
    STAGING_TABLE_PREFIX,
    PersonalTable,
)

from pravis_gateway.experiments.persons import PersonFacts
from pravis_gateway.identity import IdentityFacts

EXPORT_CHUNK_BYTES = 256 * 1024


def connect(url: str) -> Client:
    """A client for a ClickHouse HTTP URL such as `https://user:pass@host:8443/pravis` (path = database)."""
    # No session: route handlers share this client across threads, and a session refuses concurrent queries.
    return clickhouse_connect_from_url(url, autogenerate_session_id=False)


PERSON_LINE = "_person"
"""The `_table` of the export's first line, which names the ids the export covers (not a warehouse table)."""


def person_ids(client: Client, project_id: str, subject: str) -> list[str]:
    """Every id of the subject's person as the identity graph has them now (the subject alone if unlinked)."""
    params = {"project": project_id, "subject": subject}
    return [row[0] for row in client.query(LINKED_IDS_SQL, parameters=params).result_rows]


def export_subject(client: Client, project_id: str, subject: str) -> Iterator[bytes]:
    """NDJSON of every row about the person (every id linked to `subject`) in every personal table, each
    tagged with `_table`, after a first line `{"_table": "_person", "subject", "subjects_covered"}`;
    streamed."""
    subjects = person_ids(client, project_id, subject)
    header = {"_table": PERSON_LINE, "subject": subject, "subjects_covered": subjects}
    yield orjson.dumps(header) + b"\n"
    tables = [
        PersonalTable.from_row(r)
        for r in client.query(PERSONAL_TABLES_SQL, PERSONAL_TABLES_PARAMS).result_rows
    ]
    for table in tables:
        if table.name.startswith(STAGING_TABLE_PREFIX):
            continue
        with client.raw_stream(
            table.select_sql(),
            parameters={"table": table.name, "project": project_id, "subjects": subjects},
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
        "SELECT request_id, kind, subject, subjects_covered, status, requested_by, requested_at, "
        "completed_at, rows_deleted, dates_recomputed FROM privacy_requests FINAL "
        "WHERE project_id = {project:String} AND request_id = {id:String}",
        parameters={"project": project_id, "id": request_id},
    )
    return dict(zip(result.column_names, result.result_rows[0], strict=True)) if result.result_rows else None


# The person of one id from the identity tables' primary keys (a few granules each), rather than through the
# `person_overrides` view, whose evaluation scans every link of the project: measured on 1M links, ~0.75 s per
# look-up through the view (docs/scaling.md). `experiments.persons.person_of_facts` applies rule 3 to it.
PERSON_FACTS_SQL = (
    "WITH (SELECT argMinMerge(user_id) FROM identity_links "
    "WHERE project_id = {project:String} AND linked_id = {id:String}) AS owner "
    "SELECT "
    "(SELECT count() > 0 FROM identity_users WHERE project_id = {project:String} AND user_id = {id:String}), "
    "owner, "
    "(SELECT groupArray((user_id, person)) FROM (SELECT user_id, argMax(person_id, version) AS person "
    "FROM identity_merges WHERE project_id = {project:String} AND user_id IN ({id:String}, owner) "
    "GROUP BY user_id))"
)


def person_facts(client: Client, project_id: str, distinct_id: str) -> PersonFacts:
    """What the identity tables say about `distinct_id`, in one round trip."""
    params = {"project": project_id, "id": distinct_id}
    identified, owner, merged = client.query(PERSON_FACTS_SQL, parameters=params).result_rows[0]
    return PersonFacts(bool(identified), owner, dict(merged))


class WarehouseUnavailable(Exception):
    """ClickHouse did not answer (or lacks a table: run `pravis migrate`); a request that needs it must be
    retried later, its input is fine."""


class ReloadingStore(Protocol):
    async def refresh_forever(self) -> None: ...

    def close(self) -> None: ...


@asynccontextmanager
async def reloading(store: ReloadingStore) -> AsyncIterator[None]:
    """Keep `store` reloading from the warehouse in the background while the app runs, then close it."""
    task = asyncio.create_task(store.refresh_forever())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        store.close()


class LazyClient:
    """The client of a store that reloads in the background (experiments, surveys): connected on first use
    and again after a failure, each call run in a thread, any failure raised as `WarehouseUnavailable`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: Client | None = None

    async def run(self, operation: Callable[[Client], Any]) -> Any:
        def call() -> Any:
            if self._client is None:
                self._client = connect(self.url)
            return operation(self._client)

        try:
            return await asyncio.to_thread(call)
        except Exception as exc:
            self._client = None
            raise WarehouseUnavailable(str(exc)) from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


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
