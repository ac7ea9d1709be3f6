-- Status of a feature request (issue 23), set with the secret key (pravis_schemas.feature_requests): one row per
-- change, the newest per (project_id, request) wins. `request` is the normalised title the board groups votes
-- by; `title` the spelling the operator used. No subject column: a status is no one's personal data.
CREATE TABLE IF NOT EXISTS feature_request_status
(
    project_id LowCardinality(String),
    request String,
    title String,
    status LowCardinality(String),
    changed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(changed_at)
ORDER BY (project_id, request);
