-- Error patterns (issue 24): failures grouped by fingerprint per day (pravis_schemas.error_patterns; the
-- stream tier's detector computes the same fingerprints). `message` is the normalised message (numbers, ids and
-- quoted values replaced), so a row never holds one user's values; `first_at`/`last_at` bound the day's
-- occurrences, min(first_at) over every day is when the pattern was first seen.
CREATE TABLE IF NOT EXISTS error_patterns_daily
(
    project_id LowCardinality(String),
    day Date,
    fingerprint String,
    kind LowCardinality(String),
    error_type String,
    location String,
    message String,
    events UInt64,
    users UInt64,
    first_at DateTime64(3, 'UTC'),
    last_at DateTime64(3, 'UTC'),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day, fingerprint);
