"""Which warehouse tables hold personal data and the SQL that finds, exports or deletes one person's rows.

Shared by the gateway (export) and the privacy worker (deletion), so both always cover the same tables: any
table of the database with a subject column (`SUBJECT_COLUMNS`). Pure: statements only, with the person as
a query parameter; table and column names come from ClickHouse's own catalogue, except for the identity
graph's tables (`IDENTITY_TABLES`), whose subjects are declared here.
"""

from dataclasses import dataclass

SUBJECT_COLUMNS = ("user_id", "anonymous_id", "distinct_id", "subject", "previous_id", "person_id")
"""Columns holding an id of a person (`previous_id`: the id an alias merges; `person_id`: user_activity_daily,
whose rows are keyed by person)."""

PERSONAL_TABLES_SQL = (
    "SELECT c.table, groupArrayIf(c.name, c.name IN {subjects:Array(String)}), "
    "countIf(c.name = 'project_id') > 0, any(t.engine) "
    "FROM system.columns AS c INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
    "WHERE c.database = currentDatabase() AND t.engine LIKE '%MergeTree' "
    "GROUP BY c.table HAVING length(groupArrayIf(c.name, c.name IN {subjects:Array(String)})) > 0 "
    "ORDER BY c.table"
)
PERSONAL_TABLES_PARAMS = {"subjects": list(SUBJECT_COLUMNS)}
STAGING_TABLE_PREFIX = "_staging_"
"""Rollup runs build into transient tables of this prefix and swap them in: copies of rows other tables
hold, dropped within the run, so an export skips them (a table listed may be gone when it is read)."""


@dataclass(frozen=True)
class TableRule:
    """How a table names its subjects where the catalogue's column names do not say it."""

    subjects: tuple[str, ...]
    """SQL expressions, each compared with the subject."""
    columns: str = "*"
    """What an export selects."""


IDENTITY_TABLES = {
    # linked_id is the anonymous (or aliased) id and user_id an argMin state naming the user it belongs to:
    # the finalized state is compared, and exported, as the user id it holds. The comparison names the table
    # because the export's `AS user_id` would otherwise shadow the state column.
    "identity_links": TableRule(
        ("`linked_id`", "finalizeAggregation(`identity_links`.`user_id`)"),
        "project_id, linked_id, finalizeAggregation(user_id) AS user_id, first_linked_at, last_linked_at",
    ),
    "identity_users": TableRule(("`user_id`",)),
    # A merged user's row names the person it belongs to, which is an id of the subject as well.
    "identity_merges": TableRule(("`user_id`", "`person_id`")),
}
"""The identity graph's tables (migration 0030, docs/identity.md) and the columns holding a person's ids."""


@dataclass(frozen=True)
class PersonalTable:
    name: str
    subject_columns: tuple[str, ...]
    has_project: bool
    engine: str

    @classmethod
    def from_row(cls, row: tuple) -> "PersonalTable":
        name, columns, has_project, engine = row
        return cls(name, tuple(sorted(columns)), bool(has_project), engine)

    @property
    def rule(self) -> TableRule:
        default = TableRule(tuple(f"`{column}`" for column in self.subject_columns))
        return IDENTITY_TABLES.get(self.name, default)

    def where(self) -> str:
        """Rows of {subject:String} (in {project:String} where the table has a project)."""
        match = " OR ".join(f"{subject} = {{subject:String}}" for subject in self.rule.subjects)
        return f"project_id = {{project:String}} AND ({match})" if self.has_project else f"({match})"

    def select_sql(self) -> str:
        final = " FINAL" if "Replacing" in self.engine else ""
        columns = self.rule.columns
        return f"SELECT {{table:String}} AS _table, {columns} FROM `{self.name}`{final} WHERE {self.where()}"

    def count_sql(self) -> str:
        return f"SELECT count() FROM `{self.name}` WHERE {self.where()}"

    def delete_sql(self) -> str:
        # A synchronous mutation, not a lightweight DELETE: the rows are gone from disk when it returns, which
        # is what a verified deletion has to show.
        return f"ALTER TABLE `{self.name}` DELETE WHERE {self.where()} SETTINGS mutations_sync = 2"


# The audit of privacy requests names the person whose data was deleted, and the consent history shows what
# they agreed to and withdrew; GDPR's accountability principle (art. 5(2), 7(1)) requires keeping both, so
# deletion skips them (export still shows them).
RETAINED_FOR_ACCOUNTABILITY = frozenset({"privacy_requests", "consent_history"})
