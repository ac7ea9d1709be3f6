-- A/B testing (issue 8). `experiments`: every saved version of a definition (pravis_schemas.experiments); the
-- newest version per (project_id, experiment_key) is the live one. `definition` is the full JSON; `status` is
-- repeated as a column for dashboards.
CREATE TABLE IF NOT EXISTS experiments
(
    project_id LowCardinality(String),
    experiment_key String,
    version UInt32,
    status LowCardinality(String),
    definition String,
    created_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(created_at)
ORDER BY (project_id, experiment_key, version);

-- `experiment_results`: one row per experiment x variant x goal (goal '' when the experiment has none), rewritten
-- by pravis_rollups.experiments.refresh_results; the newest computed_at wins, so query with FINAL.
-- users: exposed users counted once (first exposure), excluding the multi_variant_users who saw more than one
-- variant. Conversion goals fill conversions/conversion_rate; numeric goals fill mean/variance (per-user sums).
-- lift is relative to the control variant, with its confidence interval and p-value (two-proportion z test or
-- Welch t test); NULL on the control row and where it cannot be computed. srm_p_value is the chi-square
-- sample-ratio-mismatch test of users against the configured weights; srm_flag = srm_p_value < 0.001.
CREATE TABLE IF NOT EXISTS experiment_results
(
    project_id LowCardinality(String),
    experiment_key String,
    definition_version UInt32,
    variant String,
    variation_id UInt16,
    is_control Bool,
    weight Float64,
    goal String,
    goal_kind LowCardinality(String),
    users UInt64,
    multi_variant_users UInt64,
    conversions Nullable(UInt64),
    conversion_rate Nullable(Float64),
    mean Nullable(Float64),
    variance Nullable(Float64),
    lift Nullable(Float64),
    lift_ci_low Nullable(Float64),
    lift_ci_high Nullable(Float64),
    p_value Nullable(Float64),
    confidence_level Float64,
    srm_p_value Nullable(Float64),
    srm_flag Bool,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (project_id, experiment_key, variant, goal);
