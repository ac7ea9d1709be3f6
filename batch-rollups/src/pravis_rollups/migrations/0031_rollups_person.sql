-- Rollups count persons, not raw ids (issue 21, docs/identity.md): an anonymous visitor who logs in is one user.
-- user_activity_daily is keyed by person_id instead of distinct_id. A key column cannot be renamed, so the table
-- is recreated (it holds only derived data) and its runs are forgotten: the next run recomputes it for every day
-- the rollups reading it need (the MAU window, the whole history for retention). The other rollup tables keep
-- their rows until their dates are recomputed: the scheduler's window, or `pravis rollup --from --to` for older
-- dates (docs/queries.md, "Freshness").
DROP TABLE IF EXISTS user_activity_daily;

CREATE TABLE IF NOT EXISTS user_activity_daily
(
    project_id LowCardinality(String),
    day Date,
    person_id String,
    events UInt64,
    first_at DateTime64(3, 'UTC'),
    last_at DateTime64(3, 'UTC'),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day, person_id);

DELETE FROM rollup_runs WHERE job = 'user_activity_daily';

-- Distinct persons per AI group and per day of feedback ("AI and feedback per user").
ALTER TABLE ai_performance_daily ADD COLUMN IF NOT EXISTS users UInt64 AFTER requests;

ALTER TABLE feedback_daily ADD COLUMN IF NOT EXISTS users UInt64 AFTER feedback;
