-- Consent history: every record of the `consent` topic, including the withdrawal a deletion request makes and
-- any grant after it. Kept after the subject's other rows are deleted and never expired: the controller must be
-- able to show what a person consented to and when (GDPR art. 7(1)). The Kafka position makes a redelivered
-- record collapse into its first copy.
CREATE TABLE IF NOT EXISTS consent_history
(
    project_id LowCardinality(String),
    subject String,
    consent Map(LowCardinality(String), Bool),
    changed_at DateTime64(3, 'UTC'),
    source Nullable(String),
    erasure_request_id Nullable(String),
    follows_erasure Nullable(String),
    explicit Nullable(Bool),
    kafka_partition UInt32,
    kafka_offset UInt64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
ORDER BY (project_id, subject, changed_at, kafka_partition, kafka_offset);

-- A consent_change event says whether the user acted just now and which deletion request it follows.
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS explicit Nullable(Bool) AFTER source,
    ADD COLUMN IF NOT EXISTS follows_erasure Nullable(String) AFTER explicit;

ALTER TABLE events_ingest
    ADD COLUMN IF NOT EXISTS explicit Nullable(Bool) AFTER source,
    ADD COLUMN IF NOT EXISTS follows_erasure Nullable(String) AFTER explicit;
