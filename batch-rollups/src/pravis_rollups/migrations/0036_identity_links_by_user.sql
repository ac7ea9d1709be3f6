-- The links of `identity_links` keyed by the user they name: "every id of the person of X" (export, deletion,
-- consent withdrawal: pravis_schemas.identity.LINKED_IDS_SQL) then reads a few granules per user of the person
-- instead of evaluating `person_overrides` over every link of the project (measured ~5.9 s per request at 1M
-- links, docs/scaling.md). A row is a candidate: the id belongs to this user only if `identity_links`' argMin
-- names it (rule 1), which the query checks by that table's key. Filled by the same two kinds of links as 0030.
CREATE TABLE IF NOT EXISTS identity_links_by_user
(
    project_id String,
    user_id String,
    linked_id String
)
ENGINE = ReplacingMergeTree
ORDER BY (project_id, user_id, linked_id);

-- The select reads a subquery so that the output columns do not shadow the input ones.
CREATE MATERIALIZED VIEW IF NOT EXISTS identity_links_by_user_from_events TO identity_links_by_user AS
SELECT DISTINCT project_id, identified AS user_id, linked AS linked_id
FROM
(
    SELECT project_id, assumeNotNull(user_id) AS identified, assumeNotNull(anonymous_id) AS linked
    FROM events_ingest
    WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL AND anonymous_id != user_id
);

CREATE MATERIALIZED VIEW IF NOT EXISTS identity_links_by_user_from_aliases TO identity_links_by_user AS
SELECT DISTINCT project_id, identified AS user_id, linked AS linked_id
FROM
(
    SELECT project_id, assumeNotNull(user_id) AS identified, assumeNotNull(previous_id) AS linked
    FROM events_ingest
    WHERE previous_id IS NOT NULL AND user_id IS NOT NULL
);

-- The links loaded before this migration (a row inserted meanwhile may come twice: the engine keeps one).
INSERT INTO identity_links_by_user
SELECT DISTINCT project_id, identified AS user_id, linked AS linked_id
FROM
(
    SELECT project_id, assumeNotNull(user_id) AS identified, assumeNotNull(anonymous_id) AS linked
    FROM events
    WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL AND anonymous_id != user_id
    UNION ALL
    SELECT project_id, assumeNotNull(user_id) AS identified, assumeNotNull(previous_id) AS linked
    FROM events
    WHERE previous_id IS NOT NULL AND user_id IS NOT NULL
);
