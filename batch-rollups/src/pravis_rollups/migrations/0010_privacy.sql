-- Audit of privacy requests: who asked, when, what was removed. One row per state change of a request;
-- ReplacingMergeTree(updated_at) keeps the newest state (query with FINAL). Never deleted: GDPR accountability.
CREATE TABLE IF NOT EXISTS privacy_requests
(
    request_id String,
    kind LowCardinality(String),
    project_id LowCardinality(String),
    subject String,
    requested_by String,
    requested_at DateTime64(3, 'UTC'),
    status LowCardinality(String),
    completed_at Nullable(DateTime64(3, 'UTC')),
    rows_deleted Map(String, UInt64),
    dates_recomputed Array(Date),
    error Nullable(String),
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (project_id, request_id);
