-- Identity stitching (issue 21, rules in docs/identity.md): which ids are one person.
--
-- `alias` events name the id they merge in `previous_id`; `forced` marks an alias the gateway let through on
-- the secret-key route although both users had a history. Added to both tables: rows reach `events` through
-- `events_ingest` (0006), which must keep the same columns.
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS previous_id Nullable(String),
    ADD COLUMN IF NOT EXISTS forced Nullable(Bool);

ALTER TABLE events_ingest
    ADD COLUMN IF NOT EXISTS previous_id Nullable(String),
    ADD COLUMN IF NOT EXISTS forced Nullable(Bool);

-- Rule 1: the identified user an id other than a user id belongs to. One row per (project_id, linked_id) after
-- merges; `user_id` keeps argMin over (priority, timestamp, user_id) of every link seen, priority 0 for explicit
-- links (identify, alias) and 1 for implicit ones (any other event carrying both ids). argMin, min and max are
-- functions of the set of links, so redelivered, replayed, late or backfilled events end in the same row.
-- Read with `argMinMerge(user_id) ... GROUP BY project_id, linked_id` (or through `person_overrides`).
CREATE TABLE IF NOT EXISTS identity_links
(
    project_id String,
    linked_id String,
    user_id AggregateFunction(argMin, String, Tuple(UInt8, DateTime64(3, 'UTC'), String)),
    first_linked_at SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_linked_at SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (project_id, linked_id);

-- The views read `events_ingest`, the loader's insert path, so each insert block is aggregated once on its way
-- in and `events` itself is never scanned. Two views rather than one with an array of links per row: each
-- filter drops most rows before anything is built (only alias rows carry previous_id).
-- The select reads a subquery so that the output column `user_id` (the state) does not shadow the input one.
CREATE MATERIALIZED VIEW IF NOT EXISTS identity_links_from_events TO identity_links AS
SELECT
    project_id,
    linked_id,
    argMinState(identified, (priority, timestamp, identified)) AS user_id,
    min(timestamp) AS first_linked_at,
    max(timestamp) AS last_linked_at
FROM
(
    SELECT
        project_id,
        assumeNotNull(anonymous_id) AS linked_id,
        assumeNotNull(user_id) AS identified,
        toUInt8(event_type NOT IN ('identify', 'alias')) AS priority,
        timestamp
    FROM events_ingest
    WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL AND anonymous_id != user_id
)
GROUP BY project_id, linked_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS identity_links_from_aliases TO identity_links AS
SELECT
    project_id,
    linked_id,
    argMinState(identified, (toUInt8(0), timestamp, identified)) AS user_id,
    min(timestamp) AS first_linked_at,
    max(timestamp) AS last_linked_at
FROM
(
    SELECT project_id, assumeNotNull(previous_id) AS linked_id, assumeNotNull(user_id) AS identified, timestamp
    FROM events_ingest
    WHERE previous_id IS NOT NULL AND user_id IS NOT NULL
)
GROUP BY project_id, linked_id;

-- Identified ids: every id that appeared as user_id. `events` counts the rows other than aliases (rule 4's
-- "own history"; an alias names its user_id without being history of it); redelivered copies count again, so
-- it only says whether there is a history, not how long.
CREATE TABLE IF NOT EXISTS identity_users
(
    project_id String,
    user_id String,
    first_seen_at SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
    last_seen_at SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
    events SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
ORDER BY (project_id, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS identity_users_from_events TO identity_users AS
SELECT
    project_id,
    identified AS user_id,
    min(timestamp) AS first_seen_at,
    max(timestamp) AS last_seen_at,
    countIf(event_type != 'alias') AS events
FROM
(
    SELECT project_id, assumeNotNull(user_id) AS identified, timestamp, event_type
    FROM events_ingest
    WHERE user_id IS NOT NULL
)
GROUP BY project_id, identified;

-- The events loaded before this migration, through the same selects (a row inserted meanwhile may be counted by
-- both a view and this backfill: argMin, min and max do not mind, and `events` only says whether there is any).
INSERT INTO identity_links
SELECT
    project_id,
    linked_id,
    argMinState(identified, (priority, timestamp, identified)) AS user_id,
    min(timestamp) AS first_linked_at,
    max(timestamp) AS last_linked_at
FROM
(
    SELECT
        project_id,
        assumeNotNull(anonymous_id) AS linked_id,
        assumeNotNull(user_id) AS identified,
        toUInt8(event_type NOT IN ('identify', 'alias')) AS priority,
        timestamp
    FROM events
    WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL AND anonymous_id != user_id
)
GROUP BY project_id, linked_id;

INSERT INTO identity_users
SELECT
    project_id,
    identified AS user_id,
    min(timestamp) AS first_seen_at,
    max(timestamp) AS last_seen_at,
    count() AS events
FROM
(
    SELECT project_id, assumeNotNull(user_id) AS identified, timestamp
    FROM events
    WHERE user_id IS NOT NULL
)
GROUP BY project_id, identified;

-- Rule 2: identified users merged by aliases, one row per member of a merged component with the component's
-- person_id (its smallest user id). Written by the loader (pravis_rollups.clickhouse.refresh_identity_merges)
-- from the alias edges between identified users; the newest version per user wins. A row whose person_id is
-- its own user_id says the user left its component (its alias was deleted).
CREATE TABLE IF NOT EXISTS identity_merges
(
    project_id String,
    user_id String,
    person_id String,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (project_id, user_id);

-- Rule 3 as a lookup: every id whose person_id is not itself, at most one row per (project_id, distinct_id).
-- Merged users from identity_merges; ids linked to a user (rule 1) that are not identified themselves, under
-- the person of that user. Analysts and rollups join it:
--   LEFT JOIN person_overrides AS po ON po.project_id = e.project_id AND po.distinct_id = e.distinct_id
--   ... if(po.person_id = '', e.distinct_id, po.person_id) AS person_id
CREATE VIEW IF NOT EXISTS person_overrides AS
SELECT project_id, user_id AS distinct_id, person_id
FROM
(
    SELECT project_id, user_id, argMax(person_id, version) AS person_id
    FROM identity_merges
    GROUP BY project_id, user_id
)
WHERE person_id != user_id
UNION ALL
SELECT links.project_id AS project_id, links.linked_id AS distinct_id,
    if(merges.person_id = '', links.user_id, merges.person_id) AS person_id
FROM
(
    SELECT project_id, linked_id, argMinMerge(user_id) AS user_id
    FROM identity_links
    GROUP BY project_id, linked_id
) AS links
LEFT JOIN
(
    SELECT project_id, user_id, argMax(person_id, version) AS person_id
    FROM identity_merges
    GROUP BY project_id, user_id
) AS merges ON merges.project_id = links.project_id AND merges.user_id = links.user_id
WHERE (links.project_id, links.linked_id) NOT IN (
    SELECT project_id, user_id FROM identity_users
    WHERE (project_id, user_id) IN (SELECT project_id, linked_id FROM identity_links)
);
