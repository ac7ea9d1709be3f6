-- Money goals of experiments (issue 24): revenue per user is averaged in the reporting currency, each order
-- converted through fx_rates at the rate of its day (pravis_rollups.experiments). `currency` names that currency
-- and `unconverted` counts the variant's orders left out because their currency had no rate yet; both NULL on
-- the rows of other goals.
ALTER TABLE experiment_results
    ADD COLUMN IF NOT EXISTS currency Nullable(String),
    ADD COLUMN IF NOT EXISTS unconverted Nullable(UInt64);
