"""The warehouse's chdb connections ("lanes"): opening them on the data path, lending each to one request at a
time (read-only lanes for GET), and what a request runs on its lane: the access check of its statement, a
spooled insert, a result run whole or streamed block by block."""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import chdb
import structlog
from chdb.state.sqlitelike import Connection, StreamingResult

from pravis_local.warehouse.access import (
    AccessPolicy,
    Refused,
    check_statement,
    check_storage_settings,
    write_engine_config,
)
from pravis_local.warehouse.protocol import (
    DEFAULT_FORMAT,
    ClickHouseError,
    HttpQuery,
    InsertPlan,
    Summary,
    quote_identifier,
    quote_literal,
)

log = structlog.get_logger(__name__)

# One connection per core lets that many inserts parse at once; at least two, so one long streamed result
# never holds up every other request.
DEFAULT_CONNECTIONS = max(2, os.cpu_count() or 1)
# The request's settings stay applied while its statement is parsed for the access check, since some change
# how a statement parses (dialect, max_query_size); these, when the request sets them, would cut the parse's
# output short, so they are lifted for it and put back after. (A parse cut short by any other means is
# refused: check_statement verifies the tree is whole.)
_UNLIMITED_RESULT = {"max_result_rows": "0", "max_result_bytes": "0", "limit": "0", "offset": "0"}


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    try:
        yield
    except RuntimeError as exc:  # chdb raises RuntimeError (or its subclass ChdbError) for engine errors
        raise ClickHouseError.wrap(exc) from None
    except UnicodeDecodeError as exc:
        # The engine refused input and quoted bytes of it that are not UTF-8: chdb cannot decode its message.
        raise ClickHouseError(
            1001, f"engine error with a message that is not UTF-8: {exc} (STD_EXCEPTION)"
        ) from None


class Lane:
    """One chdb connection and what a request leaves on it while it holds the lane: the current database, the
    settings and an open streaming result are all per connection. The methods run in worker threads."""

    def __init__(self, target: str, readonly: bool) -> None:
        self.target, self.readonly = target, readonly
        self.connection = self._connect()
        self._stream: StreamingResult | None = None

    def _connect(self) -> Connection:
        connection = chdb.connect(self.target)
        if self.readonly:
            # ClickHouse's HTTP handler gives GET readonly=2: settings may change, data and schema may not.
            connection.query("SET readonly = 2", DEFAULT_FORMAT)
        return connection

    def renew(self) -> None:
        """Replace the connection: a SET statement changed it for good (readonly cannot even be undone),
        where on a ClickHouse server, without a session, it changes nothing beyond its own request."""
        old, self.connection = self.connection, self._connect()
        old.close()

    def run(self, sql: str) -> str:
        return self.connection.query(sql, DEFAULT_FORMAT).bytes().decode()

    def enter(self, database: str, changes: dict[str, str]) -> None:
        with engine_errors():
            self.run(f"USE {quote_identifier(database)}")
            if changes:
                self.run("SET " + ", ".join(f"{name} = {quote_literal(v)}" for name, v in changes.items()))

    def leave(self, changes: dict[str, str]) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(RuntimeError):
                stream.cancel()
        if changes:
            self.run("SET " + ", ".join(f"{name} = DEFAULT" for name in changes))

    def insert(self, plan: InsertPlan, path: str, summary: Summary) -> None:
        # The data goes through a spool file and `INSERT ... FROM INFILE`, not chdb's send_insert: send_insert
        # answers success for rows the engine refuses while writing the part (a CHECK constraint, too many
        # partitions in one block: code 469, 252), so an accepted insert could be lost; FROM INFILE runs as a
        # query and raises them.
        sql = f"{plan.target} FROM INFILE {quote_literal(path)}{plan.settings} FORMAT {plan.format}"
        with engine_errors():
            result = self.connection.query(sql, DEFAULT_FORMAT)
        summary.add(result)
        summary.read_rows, summary.read_bytes = summary.written_rows, summary.written_bytes

    def check(self, query: HttpQuery, policy: AccessPolicy) -> str:
        """Refuse the statement if the engine's parse of it reaches outside what `policy` allows; return its
        kind (check_statement)."""
        explain = b"EXPLAIN AST " + query.statement
        # chdb's query() runs every statement of a multi-statement text; its streaming entry point parses
        # first and refuses several statements (as ClickHouse's HTTP handler does), and refuses to stream
        # EXPLAIN before executing anything. So the parse that query() then runs is of this one statement.
        # Statements end only at a `;` or `\G` token: a text with neither byte needs no such proof, which
        # saves an engine call (~1 ms, docs/scaling.md) on most requests.
        if b";" in query.statement or b"\\" in query.statement:
            try:
                self.connection.send_query(explain, DEFAULT_FORMAT, params=query.params)
            except RuntimeError as exc:
                if "Streaming query is not supported" not in str(exc):
                    raise ClickHouseError.wrap(exc) from None
            else:
                raise ClickHouseError(
                    48, "this chdb streams EXPLAIN: statements cannot be checked. (NOT_IMPLEMENTED)"
                )
        limited = _UNLIMITED_RESULT.keys() & query.settings.keys()
        with engine_errors():
            if limited:
                self.run("SET " + ", ".join(f"{name} = {_UNLIMITED_RESULT[name]}" for name in limited))
            try:
                result = self.connection.query(explain, DEFAULT_FORMAT, params=query.params)
            finally:
                if limited:
                    self.run(
                        "SET "
                        + ", ".join(f"{name} = {quote_literal(query.settings[name])}" for name in limited)
                    )
            # Literals may hold any bytes; surrogateescape keeps a path's bytes as the engine reads them.
            ast = result.bytes().decode(errors="surrogateescape")
        try:
            kind = check_statement(ast, policy)
            check_storage_settings(ast, query.statement)
            return kind
        except Refused as exc:
            log.warning("warehouse.refused", reason=exc.reason, query_id=query.query_id)
            raise ClickHouseError(exc.code, exc.message) from None

    def start(self, query: HttpQuery, summary: Summary) -> bytes | None:
        """Stream the statement if chdb can (SELECT) and return None; else run it and return its output."""
        try:
            self._stream = self.connection.send_query(
                query.statement, query.output_format, params=query.params
            )
            return None
        except RuntimeError as exc:
            if "Streaming query is not supported" not in str(exc):  # chdb refuses before executing anything
                raise ClickHouseError.wrap(exc) from None
        with engine_errors():
            result = self.connection.query(query.statement, query.output_format, params=query.params)
        summary.add(result)
        return result.bytes()

    def fetch(self, summary: Summary) -> bytes | None:
        assert self._stream is not None
        with engine_errors():
            chunk = self._stream.fetch()
        if chunk is None:
            return None
        summary.add(chunk)
        return chunk.bytes()


class Warehouse:
    """Owns the chdb connections ("lanes") to the data path and lends each to one request at a time.

    chdb parses an insert's data on one thread and a connection runs one statement at a time, so with a single
    connection concurrent inserts (the loader's slices), and any query behind a long streamed result, waited
    their turn. Connections of one process share one engine: a database or table made through one is there
    for all; only USE and SET are per connection, and ``lane`` applies and undoes them per request.
    ``chdb.connect`` rather than ``chdb.session.Session``: a session only wraps that same connection (adding a
    UDF path this server does not use), and connect is the API documented for many connections to one path."""

    def __init__(
        self,
        path: Path,
        database: str,
        connections: int = DEFAULT_CONNECTIONS,
        policy: AccessPolicy | None = None,
    ) -> None:
        self.path, self.database, self.connections = path, database, connections
        self.policy = policy or AccessPolicy(user_files=path.parent / "user_files")
        self.timezone, self.compress_by_default = "UTC", False
        self.setting_names: frozenset[str] = frozenset()
        self.lanes: list[Lane] = []
        self.readonly_lanes: list[Lane] = []
        self._idle: asyncio.Queue[Lane] = asyncio.Queue()
        self._idle_readonly: asyncio.Queue[Lane] = asyncio.Queue()

    async def open(self) -> None:
        await anyio.to_thread.run_sync(self._connect)
        for lane in self.lanes:
            self._idle.put_nowait(lane)
        for lane in self.readonly_lanes:
            self._idle_readonly.put_nowait(lane)

    def _connect(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self.policy.user_files.mkdir(parents=True, exist_ok=True)
        config = write_engine_config(self.path.with_name(self.path.name + "-config"), self.policy)
        target = f"{self.path}?config-file={config}"
        self.lanes = [Lane(target, readonly=False) for _ in range(self.connections)]
        # readonly cannot be lifted on a connection once set, so GET requests get connections of their own.
        self.readonly_lanes = [Lane(target, readonly=True) for _ in range(self.connections)]
        first = self.lanes[0]
        first.run(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(self.database)}")
        self.timezone = first.run("SELECT timezone()").strip()
        self.setting_names = frozenset(first.run("SELECT name FROM system.settings").split())
        # chdb's default is enable_http_compression=1, and clients trust system.settings: clickhouse-connect
        # then stops sending the parameter and simply expects compressed responses.
        self.compress_by_default = first.run("SELECT getSetting('enable_http_compression')").strip() == "true"

    async def close(self) -> None:
        # Closing a connection under a running query crashes chdb: take every lane back first.
        for _ in self.lanes:
            await self._idle.get()
        for _ in self.readonly_lanes:
            await self._idle_readonly.get()
        await anyio.to_thread.run_sync(self._disconnect)

    def _disconnect(self) -> None:
        lanes, self.lanes, self.readonly_lanes = self.lanes + self.readonly_lanes, [], []
        for lane in lanes:  # the engine shuts down with the last connection
            lane.connection.close()

    @contextlib.asynccontextmanager
    async def lane(
        self, database: str, changes: dict[str, str], readonly: bool = False
    ) -> AsyncIterator[Lane]:
        """An idle lane (a read-only one for `readonly`) with ``USE database`` and ``SET changes`` applied;
        undone before it goes back."""
        # A queue of idle lanes rather than a lock per lane: a request waits only while every lane is busy.
        idle = self._idle_readonly if readonly else self._idle
        lane = await idle.get()
        try:
            await anyio.to_thread.run_sync(lane.enter, database, changes)
            yield lane
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    await anyio.to_thread.run_sync(lane.leave, changes)
                finally:
                    idle.put_nowait(lane)
