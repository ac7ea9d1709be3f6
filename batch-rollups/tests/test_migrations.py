import re
import secrets
import uuid

import orjson
from pravis_rollups import clickhouse
from pravis_rollups.clickhouse import _statements, migration_files
from pravis_schemas.personal_data import PERSONAL_TABLES_PARAMS, PERSONAL_TABLES_SQL, PersonalTable


def test_migration_versions_are_unique_and_start_at_one() -> None:
    versions = [version for version, _, _ in migration_files()]

    assert versions[0] == 1
    assert len(set(versions)) == len(versions)


def test_statements_split_on_terminating_semicolons_and_drop_comments() -> None:
    sql = (
        "-- a comment; with a semicolon\n"
        "CREATE TABLE a (x String DEFAULT ';');\n\n"
        "CREATE TABLE b (y UInt8);\n"
    )

    assert _statements(sql) == ["CREATE TABLE a (x String DEFAULT ';')", "CREATE TABLE b (y UInt8)"]


def test_cheaper_ingest_migration_keeps_the_rows_already_loaded(clickhouse_server: str) -> None:
    """0005 changes column types of a populated `events` table: the rows loaded before it read back the same,
    and rows loaded after it get their inserted_at from the warehouse, never from the message."""
    url = f"{clickhouse_server}/pravis_migration_{secrets.token_hex(4)}"
    with clickhouse.connect(url, with_database=False) as admin:
        admin.command(f"CREATE DATABASE {clickhouse.database_of(url)}")
    before = [(version, name, sql) for version, name, sql in migration_files() if version < 5]
    row = {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "timestamp": "2026-11-02T10:00:00Z",
        "received_at": "2026-11-02T10:00:01Z",
        "project_id": "p",
        "anonymous_id": "a-1",
        "properties": {"plan": "pro"},
        "browser": "Firefox",
        "experiment_key": "checkout",
        "variant": "b",
    }
    with clickhouse.connect(url) as client:
        for _, _, sql in before:
            for statement in _statements(sql):
                client.command(statement)
        client.raw_insert("events", insert_block=orjson.dumps(row), fmt="JSONEachRow")
        columns = "toString(event_id), browser, experiment_key, variant, properties.plan, inserted_at > 0"
        loaded = client.query(f"SELECT {columns} FROM events").result_rows

        applied = clickhouse.migrate(url)
        assert "0005_events_ingest_cost.sql" in applied
        assert client.query(f"SELECT {columns} FROM events").result_rows == loaded
        types = dict(
            client.query(
                "SELECT name, type FROM system.columns WHERE table = 'events' "
                "AND database = currentDatabase()"
            ).result_rows
        )
        assert types["browser"] == "Nullable(String)"
        assert types["model_used"] == "LowCardinality(Nullable(String))"

        spoofed = {**row, "event_id": str(uuid.uuid4()), "inserted_at": "2000-01-01T00:00:00Z"}
        clickhouse.insert_json_rows(client, "events", [orjson.dumps(spoofed)])
        assert client.query(
            "SELECT inserted_at > now64(3) - INTERVAL 1 HOUR FROM events WHERE event_id = {id:UUID}",
            parameters={"id": spoofed["event_id"]},
        ).result_rows == [(True,)]


def test_tables_inserted_without_omitted_field_defaults_have_no_default_expressions(
    clickhouse_server: str,
) -> None:
    """The loader inserts these tables with input_format_defaults_for_omitted_fields = 0, which gives an
    omitted column its type's default: a DEFAULT expression there would be silently skipped."""
    url = f"{clickhouse_server}/pravis_defaults_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    with clickhouse.connect(url) as client:
        for table in clickhouse.FAST_INSERT_SETTINGS:
            kinds = client.query(
                "SELECT name, default_kind FROM system.columns "
                "WHERE database = currentDatabase() AND table = {t:String} AND default_kind = 'DEFAULT'",
                parameters={"t": table},
            ).result_rows
            assert kinds == [], f"{table} has DEFAULT columns: {kinds}"


def test_events_ingest_takes_every_column_an_insert_may_set_on_events(clickhouse_server: str) -> None:
    """JSON rows reach `events` through `events_ingest` (0006), and ClickHouse skips a field its target lacks
    without a word: every column an insert may set on `events` must be there, of the same type apart from
    LowCardinality, and a row must arrive whole."""
    url = f"{clickhouse_server}/pravis_ingest_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    with clickhouse.connect(url) as client:

        def columns(table: str) -> dict[str, str]:
            return dict(
                client.query(
                    "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                    "AND table = {t:String} AND default_kind NOT IN ('MATERIALIZED', 'ALIAS')",
                    parameters={"t": table},
                ).result_rows
            )

        plain = {
            name: re.sub(r"^LowCardinality\((.*)\)$", r"\1", kind) for name, kind in columns("events").items()
        }
        assert columns("events_ingest") == plain

        row = {
            "event_id": str(uuid.uuid4()),
            "event_type": "api_request",
            "timestamp": "2026-11-02T10:00:00.250Z",
            "received_at": "2026-11-02T10:00:01Z",
            "project_id": "p",
            "user_id": "u-1",
            "properties": {"plan": "pro"},
            "feature_name": "wishlist",
            "model_used": "whisper-small",
            "endpoint": "/api/v1/cart",
            "method": "POST",
            "status": 201,
        }
        clickhouse.insert_json_rows(client, "events", [orjson.dumps(row)])
        assert client.query(
            "SELECT toString(event_id), event_type, toUnixTimestamp64Milli(timestamp), project_id, "
            "distinct_id, properties.plan, feature_name, model_used, endpoint, method, status, "
            "toTypeName(method) FROM events"
        ).result_rows == [
            (
                row["event_id"],
                "api_request",
                1_793_613_600_250,
                "p",
                "u-1",
                "pro",
                "wishlist",
                "whisper-small",
                "/api/v1/cart",
                "POST",
                201,
                "LowCardinality(Nullable(String))",
            )
        ]
        assert client.query("SELECT count() FROM events_ingest").result_rows == [(0,)]


def test_identity_migration_builds_the_graph_of_the_events_already_loaded(clickhouse_server: str) -> None:
    """0030 backfills identity_links and identity_users from `events`; rows loaded after it go through the
    views, alias rows keep their previous_id, and ids seen with one user only belong to that user."""
    url = f"{clickhouse_server}/pravis_identity_migration_{secrets.token_hex(4)}"
    with clickhouse.connect(url, with_database=False) as admin:
        admin.command(f"CREATE DATABASE {clickhouse.database_of(url)}")

    def row(event_type: str, minute: int, **ids: str) -> bytes:
        return orjson.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": event_type,
                "timestamp": f"2026-11-02T10:{minute:02d}:00Z",
                "received_at": "2026-11-02T11:00:00Z",
                "project_id": "p",
                "properties": {},
                **ids,
            }
        )

    with clickhouse.connect(url) as client:
        for _, _, sql in (m for m in migration_files() if m[0] < 30):
            for statement in _statements(sql):
                client.command(statement)
        before = [
            row("page_view", 1, anonymous_id="a-1"),
            row("page_view", 2, anonymous_id="a-1", user_id="u-2"),
            row("page_view", 3, anonymous_id="a-2", user_id="u-1"),
        ]
        clickhouse.insert_json_rows(client, "events", before)

        assert "0030_identity.sql" in clickhouse.migrate(url)
        after = [
            row("identify", 4, anonymous_id="a-2", user_id="u-3"),
            row("alias", 5, user_id="u-3", previous_id="a-3"),
        ]
        clickhouse.insert_json_rows(client, "events", after)

        assert client.query("SELECT * FROM person_overrides ORDER BY distinct_id").result_rows == [
            ("p", "a-1", "u-2"),
            ("p", "a-2", "u-3"),
            ("p", "a-3", "u-3"),
        ]
        assert client.query(
            "SELECT user_id, sum(events) FROM identity_users GROUP BY user_id ORDER BY user_id"
        ).result_rows == [("u-1", 1), ("u-2", 1), ("u-3", 1)]
        assert client.query("SELECT previous_id FROM events WHERE event_type = 'alias'").result_rows == [
            ("a-3",)
        ]

        # Deleting the id an alias merged removes the alias row and the graph's rows about it.
        parameters = {"project": "p", "subjects": ["a-3"]}
        for found in client.query(PERSONAL_TABLES_SQL, PERSONAL_TABLES_PARAMS).result_rows:
            client.command(PersonalTable.from_row(found).delete_sql(), parameters=parameters)
        assert client.query(
            "SELECT (SELECT count() FROM events WHERE previous_id = 'a-3'), "
            "(SELECT count() FROM identity_links WHERE linked_id = 'a-3'), (SELECT count() FROM events)"
        ).result_rows == [(0, 0, 4)]


def test_person_migration_rebuilds_user_activity_and_forgets_only_its_runs(
    clickhouse_server: str,
) -> None:
    """0031 keys user_activity_daily by person_id: the old rows (keyed by raw id) go, and so do the table's
    runs, so the next run recomputes its history; the other rollups' runs and rows stay until recomputed."""
    url = f"{clickhouse_server}/pravis_persons_{secrets.token_hex(4)}"
    with clickhouse.connect(url, with_database=False) as admin:
        admin.command(f"CREATE DATABASE {clickhouse.database_of(url)}")
    with clickhouse.connect(url) as client:
        client.command(
            f"CREATE TABLE {clickhouse.MIGRATIONS_TABLE} (version UInt32, name String) ENGINE = Log"
        )
        for version, name, sql in migration_files():
            if version < 31:
                for statement in _statements(sql):
                    client.command(statement)
                client.insert(
                    clickhouse.MIGRATIONS_TABLE, [[version, name]], column_names=["version", "name"]
                )
        client.command(
            "INSERT INTO user_activity_daily (project_id, day, distinct_id) "
            "VALUES ('p', '2024-03-04', 'anon-1')"
        )
        client.command("INSERT INTO daily_active_users (project_id, day, dau) VALUES ('p', '2024-03-04', 1)")
        client.command(
            "INSERT INTO rollup_runs (job, partition, rows) VALUES "
            "('user_activity_daily', '2024-03-04', 1), ('daily_active_users', '2024-03-04', 1)"
        )

        assert clickhouse.migrate(url) == ["0031_rollups_person.sql"] + [
            name for version, name, _ in migration_files() if version > 31
        ]
        by_table = dict(
            client.query(
                "SELECT table, groupArray(name) FROM (SELECT table, name FROM system.columns "
                "WHERE database = currentDatabase() ORDER BY position) GROUP BY table"
            ).result_rows
        )
        activity, ai, feedback = (
            by_table[t] for t in ("user_activity_daily", "ai_performance_daily", "feedback_daily")
        )
        assert "person_id" in activity and "distinct_id" not in activity
        assert ai.index("users") == ai.index("requests") + 1
        assert feedback.index("users") == feedback.index("feedback") + 1
        assert client.query("SELECT count() FROM user_activity_daily").result_rows == [(0,)]
        assert client.query("SELECT job FROM rollup_runs FINAL").result_rows == [("daily_active_users",)]
        assert client.query("SELECT dau FROM daily_active_users").result_rows == [(1,)]
