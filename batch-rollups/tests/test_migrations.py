from pravis_rollups.clickhouse import _statements, migration_files


def test_migrations_are_numbered_without_gaps() -> None:
    versions = [version for version, _, _ in migration_files()]

    assert versions == list(range(1, len(versions) + 1))


def test_statements_split_on_terminating_semicolons_and_drop_comments() -> None:
    sql = (
        "-- a comment; with a semicolon\n"
        "CREATE TABLE a (x String DEFAULT ';');\n\n"
        "CREATE TABLE b (y UInt8);\n"
    )

    assert _statements(sql) == ["CREATE TABLE a (x String DEFAULT ';')", "CREATE TABLE b (y UInt8)"]
