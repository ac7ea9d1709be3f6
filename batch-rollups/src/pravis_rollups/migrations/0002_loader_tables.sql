-- Tables the loader fills besides `events`, one per topic, plus the messages it could not load.
-- Each is a ReplacingMergeTree whose sort key identifies one message, so a batch Kafka redelivers (insert done,
-- offset commit lost) collapses into the first copy; query with FINAL for exact counts.

-- `events.rejected`: events the gateway refused (RejectedEvent). They carry no id of their own, so the Kafka
-- position of the message is the identity.
CREATE TABLE IF NOT EXISTS events_rejected
(
    project_id LowCardinality(String),
    received_at DateTime64(3, 'UTC'),
    `index` UInt32,
    error String,
    raw String,
    kafka_partition UInt32,
    kafka_offset UInt64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(received_at)
ORDER BY (project_id, received_at, kafka_partition, kafka_offset);

-- `alerts`: one `firing` and one `resolved` message per alert_id (pravis_schemas.messages.Alert).
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id String,
    status LowCardinality(String),
    severity LowCardinality(String),
    project_id LowCardinality(String),
    metric LowCardinality(String),
    labels Map(String, String),
    observed Float64,
    expected Float64,
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    started_at DateTime64(3, 'UTC'),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    message String,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(started_at)
ORDER BY (project_id, alert_id, status);

-- `feedback.scored`: feedback events with the sentiment of their comment (pravis_schemas.messages.ScoredFeedback);
-- event_id is the feedback event's id, so a re-scored feedback replaces the older score (latest scored_at wins).
CREATE TABLE IF NOT EXISTS feedback_scored
(
    event_id UUID,
    project_id LowCardinality(String),
    timestamp DateTime64(3, 'UTC'),
    user_id Nullable(String),
    anonymous_id Nullable(String),
    session_id Nullable(String),
    interaction_id Nullable(String),
    rating UInt8,
    comment Nullable(String),
    context Nullable(String),
    sentiment_score Nullable(Float64),
    sentiment_label LowCardinality(Nullable(String)),
    scored_at DateTime64(3, 'UTC'),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, event_id);

-- Messages of any topic that could not be parsed or inserted, with the reason; the loader moves on past them.
-- An `events` record holds several rows (one per line); `line` is the refused row's index in it, `value` that row.
CREATE TABLE IF NOT EXISTS loader_rejected
(
    topic LowCardinality(String),
    kafka_partition UInt32,
    kafka_offset UInt64,
    line UInt32,
    key Nullable(String),
    value String,
    reason String,
    rejected_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(rejected_at)
ORDER BY (topic, kafka_partition, kafka_offset, line);
