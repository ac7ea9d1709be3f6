-- Funnels (issue 22). `funnels`: every saved version of a definition (pravis_schemas.funnels); the newest
-- version per (project_id, funnel_key) is the live one. `definition` is the full JSON.
CREATE TABLE IF NOT EXISTS funnels
(
    project_id LowCardinality(String),
    funnel_key String,
    version UInt32,
    definition String,
    created_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (project_id, funnel_key, version);

-- `funnel_daily`: per saved funnel, entry day and step, the units (persons or sessions) that entered the funnel
-- that day (their first step-1 event of the day) and reached the step within the window, with the median and
-- p90 seconds from the previous step and from step 1 (NULL on step 1). Rewritten per day by the rollup jobs
-- (pravis_rollups.rollups.funnel_daily) for every funnel's newest version; docs/funnels.md.
CREATE TABLE IF NOT EXISTS funnel_daily
(
    project_id LowCardinality(String),
    day Date,
    funnel_key String,
    definition_version UInt32,
    step UInt8,
    step_name String,
    entered UInt64,
    reached UInt64,
    median_from_previous_s Nullable(Float64),
    p90_from_previous_s Nullable(Float64),
    median_from_start_s Nullable(Float64),
    p90_from_start_s Nullable(Float64),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day, funnel_key, step);
