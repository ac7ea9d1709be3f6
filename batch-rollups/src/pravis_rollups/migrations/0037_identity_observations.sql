-- One pass over each insert block for the identity graph instead of three (issue 21's loader budget): the
-- views of 0030 and 0036 each grouped every row that carries a user id, and the bench's 10M-event load spent
-- ~17 s more warehouse CPU with them than without (loader 0.84x). Now one view groups a block by
-- (project_id, user_id, anonymous_id) into `identity_observations`, a Null table whose few rows per block feed
-- the three targets. Rule 1's argMin over (priority, timestamp, user_id) of every link equals the argMin over
-- each (linked id, user) pair's best link: priority 0 with the earliest explicit timestamp when the pair has an
-- explicit link, else priority 1 with the earliest timestamp; min and max compose the same way.
CREATE TABLE IF NOT EXISTS identity_observations
(
    project_id String,
    user_id String,
    anonymous_id Nullable(String),
    first_at DateTime64(3, 'UTC'),
    last_at DateTime64(3, 'UTC'),
    first_explicit_at DateTime64(3, 'UTC'),
    explicit_links UInt64,
    history_events UInt64
)
ENGINE = Null;

CREATE MATERIALIZED VIEW IF NOT EXISTS identity_observations_from_events TO identity_observations AS
SELECT
    project_id,
    identified AS user_id,
    anonymous_id,
    min(timestamp) AS first_at,
    max(timestamp) AS last_at,
    minIf(timestamp, explicit) AS first_explicit_at,
    countIf(explicit) AS explicit_links,
    countIf(event_type != 'alias') AS history_events
FROM
(
    SELECT
        project_id,
        assumeNotNull(user_id) AS identified,
        anonymous_id,
        timestamp,
        event_type,
        event_type IN ('identify', 'alias') AS explicit
    FROM events_ingest
    WHERE user_id IS NOT NULL
)
GROUP BY project_id, identified, anonymous_id;

-- Created before the views of 0030/0036 are dropped, so a block inserted meanwhile is counted at least once:
-- twice does not change argMin, min, max or the ReplacingMergeTree's rows, and identity_users.events only says
-- whether there is any history.
CREATE MATERIALIZED VIEW IF NOT EXISTS identity_users_from_observations TO identity_users AS
SELECT
    project_id,
    identified AS user_id,
    min(first_at) AS first_seen_at,
    max(last_at) AS last_seen_at,
    sum(history_events) AS events
FROM (SELECT project_id, user_id AS identified, first_at, last_at, history_events FROM identity_observations)
GROUP BY project_id, identified;

CREATE MATERIALIZED VIEW IF NOT EXISTS identity_links_from_observations TO identity_links AS
SELECT
    project_id,
    linked_id,
    argMinState(identified, (priority, linked_at, identified)) AS user_id,
    min(first_at) AS first_linked_at,
    max(last_at) AS last_linked_at
FROM
(
    SELECT
        project_id,
        assumeNotNull(anonymous_id) AS linked_id,
        user_id AS identified,
        toUInt8(explicit_links = 0) AS priority,
        if(explicit_links = 0, first_at, first_explicit_at) AS linked_at,
        first_at,
        last_at
    FROM identity_observations
    WHERE anonymous_id IS NOT NULL AND anonymous_id != user_id
)
GROUP BY project_id, linked_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS identity_links_by_user_from_observations TO identity_links_by_user AS
SELECT DISTINCT project_id, identified AS user_id, linked AS linked_id
FROM
(
    SELECT project_id, user_id AS identified, assumeNotNull(anonymous_id) AS linked
    FROM identity_observations
    WHERE anonymous_id IS NOT NULL AND anonymous_id != user_id
);

DROP VIEW IF EXISTS identity_links_from_events;
DROP VIEW IF EXISTS identity_users_from_events;
DROP VIEW IF EXISTS identity_links_by_user_from_events;
