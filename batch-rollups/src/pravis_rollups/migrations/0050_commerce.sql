-- Commerce events (issue 24; Segment's e-commerce spec, pravis_schemas.events): product_viewed, product_added,
-- checkout_started, order_completed, order_refunded. Amounts are Decimal(18, 4) (pravis_schemas.money): the
-- gateway publishes them as decimal strings, which ClickHouse parses exactly, so no float ever rounds a price.
-- The sparse columns are plain Nullable (0005: LowCardinality costs ingest on columns most rows leave NULL);
-- basket lines are one Array(Tuple) column (JSON objects parse into the named tuple, a missing field takes its
-- type's default), so a row stays one row. Added to both tables: rows reach `events` through `events_ingest`.
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS product_id Nullable(String),
    ADD COLUMN IF NOT EXISTS sku Nullable(String),
    ADD COLUMN IF NOT EXISTS price Nullable(Decimal(18, 4)),
    ADD COLUMN IF NOT EXISTS quantity Nullable(UInt32),
    ADD COLUMN IF NOT EXISTS currency Nullable(String),
    ADD COLUMN IF NOT EXISTS order_id Nullable(String),
    ADD COLUMN IF NOT EXISTS revenue Nullable(Decimal(18, 4)),
    ADD COLUMN IF NOT EXISTS coupon Nullable(String),
    ADD COLUMN IF NOT EXISTS discount Nullable(Decimal(18, 4)),
    ADD COLUMN IF NOT EXISTS tax Nullable(Decimal(18, 4)),
    ADD COLUMN IF NOT EXISTS shipping Nullable(Decimal(18, 4)),
    ADD COLUMN IF NOT EXISTS items Array(Tuple(sku String, product_id Nullable(String), quantity UInt32, price Decimal(18, 4)));

ALTER TABLE events_ingest
    ADD COLUMN IF NOT EXISTS product_id Nullable(String),
    ADD COLUMN IF NOT EXISTS sku Nullable(String),
    ADD COLUMN IF NOT EXISTS price Nullable(Decimal(18, 4)),
    ADD COLUMN IF NOT EXISTS quantity Nullable(UInt32),
    ADD COLUMN IF NOT EXISTS currency Nullable(String),
    ADD COLUMN IF NOT EXISTS order_id Nullable(String),
    ADD COLUMN IF NOT EXISTS revenue Nullable(Decimal(18, 4)),
    ADD COLUMN IF NOT EXISTS coupon Nullable(String),
    ADD COLUMN IF NOT EXISTS discount Nullable(Decimal(18, 4)),
    ADD COLUMN IF NOT EXISTS tax Nullable(Decimal(18, 4)),
    ADD COLUMN IF NOT EXISTS shipping Nullable(Decimal(18, 4)),
    ADD COLUMN IF NOT EXISTS items Array(Tuple(sku String, product_id Nullable(String), quantity UInt32, price Decimal(18, 4)));

-- Exchange rates the operator loads (`pravis fx load rates.csv`; the pipeline never fetches any): one unit of
-- `currency` is worth `rate` units of `reporting_currency` from `day` on, until the next day with a rate.
-- ReplacingMergeTree on the key: loading a corrected file replaces the rows it repeats.
CREATE TABLE IF NOT EXISTS fx_rates
(
    reporting_currency LowCardinality(String),
    currency LowCardinality(String),
    day Date,
    rate Decimal(18, 8),
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (reporting_currency, currency, day);

-- One row per (day, currency, AI split, app version); '*' marks the total over a dimension, computed from the
-- orders (not summed). currency '*' rows hold every currency converted to `reporting_currency`. Refunds are
-- counted on the refund's day, where the order's session and app version are not known: they are on the rows
-- whose ai_session and app_version are '*', NULL on the split rows. docs/queries.md explains every column.
CREATE TABLE IF NOT EXISTS revenue_daily
(
    project_id LowCardinality(String),
    day Date,
    currency LowCardinality(String),
    ai_session LowCardinality(String),
    app_version LowCardinality(String),
    orders UInt64,
    buyers UInt64,
    revenue Nullable(Decimal(38, 4)),
    refunded_orders Nullable(UInt64),
    refunds Nullable(Decimal(38, 4)),
    net_revenue Nullable(Decimal(38, 4)),
    average_order_value Nullable(Decimal(38, 4)),
    active_users Nullable(UInt64),
    conversion Nullable(Float64),
    revenue_per_active_user Nullable(Decimal(38, 4)),
    reporting_currency String,
    unconverted UInt64,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day, currency, ai_session, app_version);
