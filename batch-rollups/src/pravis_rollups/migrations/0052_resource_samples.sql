-- Resource utilization (issue 24): `resource_sample` events, one per process every few seconds, from the
-- Python SDK's server middleware and the pipeline's own services. Plain Nullable columns (0005): every other
-- event leaves them NULL. Added to both tables: rows reach `events` through `events_ingest`.
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS host Nullable(String),
    ADD COLUMN IF NOT EXISTS service Nullable(String),
    ADD COLUMN IF NOT EXISTS pid Nullable(UInt32),
    ADD COLUMN IF NOT EXISTS cpu_percent Nullable(Float64),
    ADD COLUMN IF NOT EXISTS rss_bytes Nullable(UInt64),
    ADD COLUMN IF NOT EXISTS open_fds Nullable(UInt32),
    ADD COLUMN IF NOT EXISTS threads Nullable(UInt32),
    ADD COLUMN IF NOT EXISTS loop_lag_ms Nullable(Float64),
    ADD COLUMN IF NOT EXISTS in_flight Nullable(UInt32);

ALTER TABLE events_ingest
    ADD COLUMN IF NOT EXISTS host Nullable(String),
    ADD COLUMN IF NOT EXISTS service Nullable(String),
    ADD COLUMN IF NOT EXISTS pid Nullable(UInt32),
    ADD COLUMN IF NOT EXISTS cpu_percent Nullable(Float64),
    ADD COLUMN IF NOT EXISTS rss_bytes Nullable(UInt64),
    ADD COLUMN IF NOT EXISTS open_fds Nullable(UInt32),
    ADD COLUMN IF NOT EXISTS threads Nullable(UInt32),
    ADD COLUMN IF NOT EXISTS loop_lag_ms Nullable(Float64),
    ADD COLUMN IF NOT EXISTS in_flight Nullable(UInt32);
