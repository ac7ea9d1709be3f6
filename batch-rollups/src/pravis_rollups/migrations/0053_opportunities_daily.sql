-- Improvement opportunities (issue 24) at scale: the additive inputs of the ranked list per project, day and
-- subject (pravis_schemas.opportunities.daily_sql), and who used each subject each day
-- (users_daily_sql). The users are persons over a whole range, which no daily count adds up to, and a count
-- state (uniqExact) would keep the persons of the day it was computed: a merge since then (a login linking an
-- anonymous id) would count one person twice. So the ids are kept, as user_activity_daily keeps them, and the
-- ranked list maps them to their persons when it reads them; `person_id` makes the rows part of a person's
-- data (export, deletion). `worst_comment` is the day's lowest-rated comment, `worst_comment_key` its
-- (rating, timestamp, event_id) ordering, so the range's lowest is the least key over its days;
-- `failure_labels` counts the failures per label (location · type), so the range's most frequent adds up.
CREATE TABLE IF NOT EXISTS opportunities_daily
(
    project_id LowCardinality(String),
    day Date,
    kind LowCardinality(String),
    subject String,
    uses UInt64,
    feedback UInt64,
    low_rated UInt64,
    scored UInt64,
    negative UInt64,
    commands UInt64,
    repeated_commands UInt64,
    failed_uses UInt64,
    failures UInt64,
    worst_comment String,
    worst_comment_key Tuple(UInt8, DateTime64(3, 'UTC'), UUID),
    failure_labels Map(String, UInt64),
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day, kind, subject);

CREATE TABLE IF NOT EXISTS opportunity_users_daily
(
    project_id LowCardinality(String),
    day Date,
    kind LowCardinality(String),
    subject String,
    person_id String,
    computed_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (project_id, day, kind, subject, person_id);
