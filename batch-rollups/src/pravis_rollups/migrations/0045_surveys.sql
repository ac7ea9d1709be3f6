-- Surveys, segments and feature requests (issue 23; contracts in pravis_schemas.surveys and .events).
-- The five new event types' fields, on `events` and on `events_ingest`, which must keep the same columns.
-- `survey_answers` holds one tuple per answered question (value: rating/NPS; choices: choice keys; text: open
-- text, PII-scrubbed by the gateway).
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS survey_id Nullable(String),
    ADD COLUMN IF NOT EXISTS survey_version Nullable(UInt32),
    ADD COLUMN IF NOT EXISTS survey_answers Array(Tuple(question_id String, value Nullable(Int16), choices Array(String), text Nullable(String))),
    ADD COLUMN IF NOT EXISTS feature_request_title Nullable(String),
    ADD COLUMN IF NOT EXISTS feature_request_description Nullable(String);

ALTER TABLE events_ingest
    ADD COLUMN IF NOT EXISTS survey_id Nullable(String),
    ADD COLUMN IF NOT EXISTS survey_version Nullable(UInt32),
    ADD COLUMN IF NOT EXISTS survey_answers Array(Tuple(question_id String, value Nullable(Int16), choices Array(String), text Nullable(String))),
    ADD COLUMN IF NOT EXISTS feature_request_title Nullable(String),
    ADD COLUMN IF NOT EXISTS feature_request_description Nullable(String);

-- Every saved version of a survey / segment definition (full JSON in `definition`); the newest version per key
-- is the live one, as for `experiments`.
CREATE TABLE IF NOT EXISTS surveys
(
    project_id LowCardinality(String),
    survey_key String,
    version UInt32,
    status LowCardinality(String),
    definition String,
    created_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (project_id, survey_key, version);

CREATE TABLE IF NOT EXISTS segments
(
    project_id LowCardinality(String),
    segment_key String,
    version UInt32,
    definition String,
    created_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (project_id, segment_key, version);

-- Who is in which segment, one partition per refresh: a refresh writes its whole partition, records itself in
-- `segment_refreshes`, then drops the older partitions, so readers of the newest recorded refresh never see a
-- half-written one. Every id of a member person is listed, so the gateway looks up the id it is given.
CREATE TABLE IF NOT EXISTS segment_members
(
    refresh_id UInt64,
    project_id LowCardinality(String),
    segment_key String,
    distinct_id String
)
ENGINE = MergeTree
PARTITION BY refresh_id
ORDER BY (project_id, distinct_id, segment_key);

CREATE TABLE IF NOT EXISTS segment_refreshes
(
    refresh_id UInt64,
    as_of DateTime64(3, 'UTC'),
    segments UInt32,
    members UInt64,
    seconds Float64
)
ENGINE = MergeTree
ORDER BY refresh_id;

-- Survey results per day, survey version and question (pravis_rollups.rollups.survey_results_daily; columns
-- in docs/queries.md). question_id '' is the survey's row: shown / dismissed / answered counts.
CREATE TABLE IF NOT EXISTS survey_results_daily
(
    project_id LowCardinality(String),
    day Date,
    survey_id String,
    survey_version UInt32,
    question_id String,
    shown UInt64,
    dismissed UInt64,
    answered UInt64,
    respondents UInt64,
    responses UInt64,
    avg_value Nullable(Float64),
    promoters UInt64,
    passives UInt64,
    detractors UInt64,
    value_counts Map(Int16, UInt64),
    choice_counts Map(String, UInt64),
    text_answers UInt64,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day, survey_id, survey_version, question_id);
