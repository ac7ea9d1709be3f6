-- Rollup tables move from daily to monthly partitions (0003 made one partition per day: hundreds a year per
-- table, where ClickHouse advises a few dozen). A job now computes the dates it recomputes into a staging copy of
-- the table, copies the month's other dates next to them, and swaps each touched month in with ALTER TABLE ...
-- REPLACE PARTITION (atomic per partition; a month left empty is dropped), so re-running a date still replaces
-- its rows and never duplicates them. A partition key cannot be altered, so the tables are recreated: they hold
-- only derived data, and emptying rollup_runs makes the next run recompute the history they need (a backfill,
-- `pravis rollup --from --to`, restores older dates).
-- Rates whose denominator can be zero are Nullable: NULL means "not measurable that day", never 0.

DROP TABLE IF EXISTS user_activity_daily;
DROP TABLE IF EXISTS daily_active_users;
DROP TABLE IF EXISTS sessions_daily;
DROP TABLE IF EXISTS retention_cohorts;
DROP TABLE IF EXISTS feature_usage_daily;
DROP TABLE IF EXISTS ai_performance_daily;
DROP TABLE IF EXISTS voice_metrics_daily;
DROP TABLE IF EXISTS api_performance_daily;
DROP TABLE IF EXISTS feedback_daily;

TRUNCATE TABLE IF EXISTS rollup_runs;

-- Who was active on which day: one row per (project, day, distinct_id). Active = any event except the server-side
-- types the jobs exclude (api_request). The base of daily_active_users, retention_cohorts and feature adoption.
CREATE TABLE IF NOT EXISTS user_activity_daily
(
    project_id LowCardinality(String),
    day Date,
    distinct_id String,
    events UInt64,
    first_at DateTime64(3, 'UTC'),
    last_at DateTime64(3, 'UTC'),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day, distinct_id);

CREATE TABLE IF NOT EXISTS daily_active_users
(
    project_id LowCardinality(String),
    day Date,
    dau UInt64,
    wau UInt64,
    mau UInt64,
    new_users UInt64,
    stickiness Float64,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day);

CREATE TABLE IF NOT EXISTS sessions_daily
(
    project_id LowCardinality(String),
    day Date,
    sessions UInt64,
    users UInt64,
    sessions_per_user Float64,
    single_event_sessions UInt64,
    avg_duration_s Float64,
    p50_duration_s Float64,
    p90_duration_s Float64,
    duration_under_10s UInt64,
    duration_10s_1m UInt64,
    duration_1m_5m UInt64,
    duration_5m_15m UInt64,
    duration_15m_30m UInt64,
    duration_30m_1h UInt64,
    duration_1h_plus UInt64,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day);

CREATE TABLE IF NOT EXISTS retention_cohorts
(
    project_id LowCardinality(String),
    cohort_week Date,
    cohort_size UInt64,
    d1_eligible UInt64,
    d1_retained UInt64,
    d1_rate Nullable(Float64),
    d7_eligible UInt64,
    d7_retained UInt64,
    d7_rate Nullable(Float64),
    d30_eligible UInt64,
    d30_retained UInt64,
    d30_rate Nullable(Float64),
    as_of Date,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(cohort_week)
ORDER BY (project_id, cohort_week);

CREATE TABLE IF NOT EXISTS feature_usage_daily
(
    project_id LowCardinality(String),
    day Date,
    feature_name LowCardinality(String),
    users UInt64,
    events UInt64,
    active_users UInt64,
    adoption Nullable(Float64),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day, feature_name);

-- event_type / model_used '*' rows are totals over that dimension (computed from the events, not summed).
CREATE TABLE IF NOT EXISTS ai_performance_daily
(
    project_id LowCardinality(String),
    day Date,
    event_type LowCardinality(String),
    model_used LowCardinality(String),
    requests UInt64,
    successes UInt64,
    success_rate Float64,
    p50_ms Float64,
    p95_ms Float64,
    feedback UInt64,
    positive_feedback UInt64,
    accuracy Nullable(Float64),
    conversations UInt64,
    completion_reported UInt64,
    completed UInt64,
    completion_rate Nullable(Float64),
    follow_up_reported UInt64,
    follow_ups UInt64,
    follow_up_rate Nullable(Float64),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day, event_type, model_used);

CREATE TABLE IF NOT EXISTS voice_metrics_daily
(
    project_id LowCardinality(String),
    day Date,
    voice_requests UInt64,
    voice_successes UInt64,
    success_rate Nullable(Float64),
    commands UInt64,
    repeated_commands UInt64,
    repeated_command_rate Nullable(Float64),
    transcriptions UInt64,
    correction_reported UInt64,
    corrected UInt64,
    correction_rate Nullable(Float64),
    repeat_window_s UInt32,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day);

-- endpoint / method '*' rows are the day's totals over every endpoint.
CREATE TABLE IF NOT EXISTS api_performance_daily
(
    project_id LowCardinality(String),
    day Date,
    endpoint LowCardinality(String),
    method LowCardinality(String),
    requests UInt64,
    p50_ms Float64,
    p95_ms Float64,
    p99_ms Float64,
    client_errors UInt64,
    server_errors UInt64,
    error_rate Float64,
    cache_reported UInt64,
    cache_hits UInt64,
    cache_hit_ratio Nullable(Float64),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day, endpoint, method);

CREATE TABLE IF NOT EXISTS feedback_daily
(
    project_id LowCardinality(String),
    day Date,
    feedback UInt64,
    avg_rating Float64,
    rating_1 UInt64,
    rating_2 UInt64,
    rating_3 UInt64,
    rating_4 UInt64,
    rating_5 UInt64,
    with_comment UInt64,
    scored UInt64,
    positive UInt64,
    neutral UInt64,
    negative UInt64,
    avg_sentiment Nullable(Float64),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day);
