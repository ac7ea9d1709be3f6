from pravis_schemas.personal_data import PersonalTable


def test_statements_match_every_subject_column_within_the_project() -> None:
    table = PersonalTable.from_row(("events", ["user_id", "anonymous_id"], 1, "ReplacingMergeTree"))

    either = "`anonymous_id` = {subject:String} OR `user_id` = {subject:String}"
    expected = f"project_id = {{project:String}} AND ({either})"
    assert table.where() == expected
    assert table.select_sql().startswith(
        "SELECT {table:String} AS _table, * FROM `events` FINAL WHERE project_id"
    )
    assert table.count_sql() == f"SELECT count() FROM `events` WHERE {table.where()}"
    assert table.delete_sql().endswith("SETTINGS mutations_sync = 2")


def test_tables_without_project_or_replacing_engine() -> None:
    table = PersonalTable.from_row(("audit", ["subject"], 0, "MergeTree"))

    assert table.where() == "(`subject` = {subject:String})"
    assert " FINAL" not in table.select_sql()


def test_identity_tables_match_the_ids_they_hold_and_export_readable_user_ids() -> None:
    links = PersonalTable.from_row(("identity_links", ["user_id"], 1, "AggregatingMergeTree"))
    merges = PersonalTable.from_row(("identity_merges", ["user_id"], 1, "ReplacingMergeTree"))

    assert links.where() == (
        "project_id = {project:String} AND (`linked_id` = {subject:String} "
        "OR finalizeAggregation(`identity_links`.`user_id`) = {subject:String})"
    )
    assert "finalizeAggregation(user_id) AS user_id" in links.select_sql()
    assert merges.where().endswith("(`user_id` = {subject:String} OR `person_id` = {subject:String})")
