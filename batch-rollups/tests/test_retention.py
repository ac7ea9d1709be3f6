from pravis_rollups.retention import RetentionPolicy, TableTTL, plan

POLICY = RetentionPolicy(raw_days=395, inspection_days=30, rollup_days=1825, overrides={"alerts": 90})


def test_each_kind_of_table_gets_its_retention_and_audit_is_kept_forever() -> None:
    columns = {
        "events": [("event_id", "UUID"), ("timestamp", "DateTime64(3, 'UTC')")],
        "events_rejected": [("received_at", "DateTime64(3, 'UTC')")],
        "daily_active_users": [("project_id", "String"), ("day", "Date")],
        "alerts": [("started_at", "DateTime64(3, 'UTC')")],
        "privacy_requests": [("requested_at", "DateTime64(3, 'UTC')")],
        "no_time_column": [("x", "String")],
    }

    assert plan(columns, POLICY) == [
        TableTTL("alerts", "started_at", 90),
        TableTTL("daily_active_users", "day", 1825),
        TableTTL("events", "timestamp", 395),
        TableTTL("events_rejected", "received_at", 30),
    ]


def test_raw_events_expire_before_rollups_and_ttl_is_not_materialized_at_start() -> None:
    assert POLICY.days_for("events") < POLICY.days_for("daily_active_users")
    sql = TableTTL("events", "timestamp", 395).alter_sql()
    assert sql == (
        "ALTER TABLE `events` MODIFY TTL toDateTime(`timestamp`) + INTERVAL 395 DAY "
        "SETTINGS materialize_ttl_after_modify = 0"
    )
