"""Which warehouse tables hold personal data and the SQL that finds, exports or deletes one person's rows.

Shared by the gateway (export) and the privacy worker (deletion), so both always cover the same tables: any
table of the database with a subject column (`SUBJECT_COLUMNS`), the identity graph's tables included. A
person is every id linked to the subject in that graph (`pravis_schemas.identity.LINKED_IDS_SQL`,
docs/identity.md), so the statements match a row holding any of those ids in any subject column. Pure:
statements only, with the ids as a query parameter; table and column names come from ClickHouse's own
catalogue.
"""

from dataclasses import dataclass

SUBJECT_COLUMNS = (
    "user_id", "anonymous_id", "distinct_id", "subject", "previous_id", "linked_id", "person_id",
)  # fmt: skip
"""Columns that hold an id of a person: an event's ids (`previous_id`: the id an alias merges), the identity
graph's (`linked_id` of identity_links, `person_id` of identity_merges and of tables counted by person)."""

# An aggregate state (identity_links.user_id, argMin over the users an id was seen with) cannot be compared to
# an id: such a column is left out, and its table is found by its other subject column (linked_id).
_SUBJECT_COLUMN = "c.name IN {subjects:Array(String)} AND c.type NOT LIKE 'AggregateFunction(%'"
PERSONAL_TABLES_SQL = (
    f"SELECT c.table, groupArrayIf(c.name, {_SUBJECT_COLUMN}), "
    "countIf(c.name = 'project_id') > 0, any(t.engine) "
    "FROM system.columns AS c INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table "
    "WHERE c.database = currentDatabase() AND t.engine LIKE '%MergeTree' "
    f"GROUP BY c.table HAVING length(groupArrayIf(c.name, {_SUBJECT_COLUMN})) > 0 "
    "ORDER BY c.table"
)
PERSONAL_TABLES_PARAMS = {"subjects": list(SUBJECT_COLUMNS)}
STAGING_TABLE_PREFIX = "_staging_"
"""Rollup runs build into transient tables of this prefix and swap them in: copies of rows other tables
hold, dropped within the run, so an export skips them (a table listed may be gone when it is read)."""


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

    def where(self) -> str:
        """Rows of any id in {subjects:Array(String)} (in {project:String} where the table has a project)."""
        match = " OR ".join(f"`{column}` IN {{subjects:Array(String)}}" for column in self.subject_columns)
        return f"project_id = {{project:String}} AND ({match})" if self.has_project else f"({match})"

    def select_sql(self) -> str:
        final = " FINAL" if "Replacing" in self.engine else ""
        return f"SELECT {{table:String}} AS _table, * FROM `{self.name}`{final} WHERE {self.where()}"

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
