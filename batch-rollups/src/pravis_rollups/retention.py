"""Retention: a TTL on every warehouse table, from settings, applied after the migrations at every start.

Raw events keep for `retention_raw_days`, inspection tables (rejected events) for `retention_inspection_days`,
rollups for `retention_rollup_days` (longer than raw: aggregates hold no person), and the audit of privacy
requests, the consent history, the migrations log and experiment definitions are never expired. Planning is
pure; `apply` and `report` talk to ClickHouse.
"""

from dataclasses import dataclass

from clickhouse_connect.driver.client import Client

RAW_TABLES = frozenset({"events", "feedback_scored", "alerts"})
INSPECTION_TABLES = frozenset({"events_rejected", "loader_rejected"})
KEPT_FOREVER = frozenset(
    {"privacy_requests", "consent_history", "schema_migrations", "experiments", "rollup_runs"}
)
# The column a table's age is measured on: the first of these it has, as Date or DateTime.
TIME_COLUMNS = ("timestamp", "day", "date", "week", "cohort_week", "received_at", "started_at", "computed_at")


@dataclass(frozen=True)
class RetentionPolicy:
    raw_days: int
    inspection_days: int
    rollup_days: int
    overrides: dict[str, int]

    def days_for(self, table: str) -> int | None:
        if table in self.overrides:
            return self.overrides[table]
        if table in KEPT_FOREVER:
            return None
        if table in RAW_TABLES:
            return self.raw_days
        if table in INSPECTION_TABLES:
            return self.inspection_days
        return self.rollup_days


@dataclass(frozen=True)
class TableTTL:
    table: str
    column: str
    days: int

    def alter_sql(self) -> str:
        # Existing parts expire rows at their next merge instead of a rewrite of the whole table at start-up.
        expires = f"toDateTime(`{self.column}`) + INTERVAL {int(self.days)} DAY"
        return f"ALTER TABLE `{self.table}` MODIFY TTL {expires} SETTINGS materialize_ttl_after_modify = 0"


def plan(columns: dict[str, list[tuple[str, str]]], policy: RetentionPolicy) -> list[TableTTL]:
    """TTL per table from {table: [(column, type)]}; tables without a time column or kept forever get none."""
    planned = []
    for table, table_columns in sorted(columns.items()):
        days = policy.days_for(table)
        if days is None:
            continue
        types = dict(table_columns)
        column = next((c for c in TIME_COLUMNS if types.get(c, "").startswith(("Date", "DateTime"))), None)
        if column:
            planned.append(TableTTL(table, column, days))
    return planned


def _columns(client: Client) -> dict[str, list[tuple[str, str]]]:
    rows = client.query(
        "SELECT c.table, groupArray((c.name, c.type)) FROM system.columns AS c "
        "INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
        "WHERE c.database = currentDatabase() AND t.engine LIKE '%MergeTree' GROUP BY c.table"
    ).result_rows
    return {table: [tuple(pair) for pair in pairs] for table, pairs in rows}


def apply(client: Client, policy: RetentionPolicy) -> list[TableTTL]:
    planned = plan(_columns(client), policy)
    for ttl in planned:
        client.command(ttl.alter_sql())
    return planned


def report(client: Client, policy: RetentionPolicy, horizon_days: int = 30) -> list[dict]:
    """Per table: its TTL, the oldest row, and how many rows expire within `horizon_days`."""
    rows = []
    for ttl in plan(_columns(client), policy):
        age = f"toDateTime(`{ttl.column}`)"
        oldest, expiring = client.query(
            f"SELECT min({age}), countIf({age} + INTERVAL {{days:UInt32}} DAY "
            f"< now() + INTERVAL {{horizon:UInt32}} DAY) FROM `{ttl.table}`",
            parameters={"days": ttl.days, "horizon": horizon_days},
        ).result_rows[0]
        rows.append(
            {
                "table": ttl.table,
                "column": ttl.column,
                "keep_days": ttl.days,
                "oldest": oldest.date() if oldest and oldest.year > 1970 else None,
                "expiring_within_horizon": expiring,
            }
        )
    return rows
