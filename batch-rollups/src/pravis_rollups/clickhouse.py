"""The rollup worker's only ClickHouse access: connecting by URL, migrations, and raw batch inserts."""

import re
import time
from importlib import resources
from typing import NamedTuple

from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client
from pravis_schemas.clickhouse_url import clickhouse_connect_from_url, database_of
from pravis_schemas.identity import merge_rows

from pravis_rollups.retention import RetentionPolicy
from pravis_rollups.retention import apply as apply_retention

MIGRATIONS_TABLE = "schema_migrations"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def connect(url: str, *, with_database: bool = True, **kwargs) -> Client:
    """A client for a ClickHouse HTTP URL such as `https://user:pass@host:8443/pravis` (path = database)."""
    return clickhouse_connect_from_url(url, database=None if with_database else "default", **kwargs)


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every numbered migration shipped in this package, in order."""
    found = []
    for entry in resources.files("pravis_rollups.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


def migrate(url: str, retention: RetentionPolicy | None = None) -> list[str]:
    """Create the database if needed, apply the migrations not yet recorded, then the retention TTLs (which
    follow settings, so they are re-applied at every start); return the migration names applied."""
    database = database_of(url)
    with connect(url, with_database=False) as admin:
        admin.command("CREATE DATABASE IF NOT EXISTS {db:Identifier}", parameters={"db": database})
    applied: list[str] = []
    with connect(url) as client:
        client.command(
            f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} "
            "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
            "ENGINE = MergeTree ORDER BY version"
        )
        done = {row[0] for row in client.query(f"SELECT version FROM {MIGRATIONS_TABLE}").result_rows}
        for version, name, sql in migration_files():
            if version in done:
                continue
            for statement in _statements(sql):
                client.command(statement)
            client.insert(MIGRATIONS_TABLE, [[version, name]], column_names=["version", "name"])
            applied.append(name)
        if retention is not None:
            apply_retention(client, retention)
    return applied


def _statements(sql: str) -> list[str]:
    """Split a migration file on `;` at line ends; migrations keep one statement per `;`-terminated block."""
    without_comments = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*$", without_comments, flags=re.M) if s.strip()]


INSERT_SETTINGS = {
    "input_format_skip_unknown_fields": 1,
    "date_time_input_format": "best_effort",
    # A ReplacingMergeTree would otherwise collapse duplicates while writing the part, which halves the insert
    # rate; FINAL / LIMIT 1 BY collapse them at read time anyway (measured on chdb: 150k -> 310k rows/s).
    "optimize_on_insert": 0,
    # The loader runs several inserts at once (slices of a batch, pipelined batches), so parallel parsing
    # within each only adds its hand-off cost (measured: 0.5 us of CPU per events row, 15%).
    "input_format_parallel_parsing": 0,
}
INGEST_TABLES = {"events": "events_ingest"}
"""Tables whose JSON rows go in through a Null-engine twin that parses them more cheaply (migration 0006)."""
FAST_INSERT_SETTINGS = {
    "events_ingest": {
        # No per-row bookkeeping of omitted fields (measured: 0.4 us per row): every omitted column takes its
        # type's default (NULL, empty); `events` computes its own columns (MATERIALIZED, migration 0005).
        "input_format_defaults_for_omitted_fields": 0,
    }
}
"""Per-table additions to INSERT_SETTINGS, safe only where no column has a DEFAULT expression."""


def insert_json_rows(client: Client, table: str, rows: list[bytes]) -> None:
    """Insert rows that are already JSON objects with column-named fields, as one JSONEachRow block."""
    # The statement leads the body, joined in the same pass as the rows: clickhouse-connect would otherwise
    # copy the whole block once more to put it in front (a batch slice is ~100 MB).
    target = INGEST_TABLES.get(table, table)
    statement = f"INSERT INTO {quote_identifier(target)} FORMAT JSONEachRow".encode()
    client.raw_insert(
        None,
        insert_block=b"\n".join([statement, *rows]),
        settings=INSERT_SETTINGS | FAST_INSERT_SETTINGS.get(target, {}),
    )


IDENTITY_STATE_SQL = (
    "SELECT DISTINCT "
    "multiIf((project_id, assumeNotNull(previous_id)) IN ("
    "SELECT project_id, user_id FROM identity_users "
    "WHERE (project_id, user_id) IN ("
    "SELECT project_id, previous_id FROM events WHERE event_type = 'alias')), 'edge', "
    "received_at >= now64(3) - toIntervalMillisecond({pending_ms:UInt64}), 'pending', '') AS kind, "
    "toString(project_id), assumeNotNull(user_id), assumeNotNull(previous_id) "
    "FROM events WHERE event_type = 'alias' AND previous_id IS NOT NULL AND user_id IS NOT NULL "
    "AND kind != '' "
    "UNION ALL "
    "SELECT 'merge', project_id, user_id, argMax(person_id, version) FROM identity_merges "
    "GROUP BY project_id, user_id"
)
"""In one round trip: every alias as ('edge', project_id, user_id, previous_id) when both its ids are
identified users, the edges of rule 2 (docs/identity.md), else as ('pending', ...) if it arrived within the
pending window (older ones are left in the warehouse: most name an anonymous id that never becomes a user, and
they would cross the wire at every refresh for nothing); and ('merge', project_id, user_id, person_id) for
what identity_merges says now. An alias's user_id is identified by the alias itself; its previous_id only
once some event carried it as user_id, which may arrive after the alias. Aliases are few and `events` is
sorted by event_type within a project, so this reads a few granules of it."""
MERGES_COLUMNS = ["project_id", "user_id", "person_id", "version"]


class IdentityRefresh(NamedTuple):
    written: int
    """Rows written to identity_merges."""
    pending_ids: frozenset[str]
    """Previous ids of recent aliases that no event has carried as a user id yet: a batch carrying one as a
    user id changes the merges, so the loader looks for them in what it loads."""


def refresh_identity_merges(client: Client, pending_seconds: float = 3600.0) -> IdentityRefresh:
    """Bring `identity_merges` in line with the alias edges between identified users.

    The whole state is compared, not just a batch's aliases: a user id that becomes identified after the alias
    naming it (a late event) changes the components without any new alias. Idempotent, so running it again
    after a crash or on a redelivered batch writes nothing new. The version is taken before reading: of two
    concurrent refreshes, the one that read later wins, and any refresh after both repairs what either missed.
    Aliases that arrived within `pending_seconds` and are not edges yet are returned as pending.
    """
    version = time.time_ns()
    edges, current, pending = [], {}, set()
    state = client.query(IDENTITY_STATE_SQL, parameters={"pending_ms": int(pending_seconds * 1000)})
    for kind, project, user, other in state.result_rows:
        if kind == "edge":
            edges.append((project, user, other))
        elif kind == "pending":
            pending.add(other)
        elif kind == "merge":
            current[(project, user)] = other
    rows = merge_rows(edges, current)
    if rows:
        client.insert("identity_merges", [[*row, version] for row in rows], column_names=MERGES_COLUMNS)
    return IdentityRefresh(written=len(rows), pending_ids=frozenset(pending))
