from pravis_rollups.clickhouse import _statements, migration_files


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
