-- Privacy follows the person (issue 21, docs/identity.md): a deletion covers every id linked to its subject, and
-- the audit names them, as resolved from the identity graph when the privacy worker carried the request out.
ALTER TABLE privacy_requests
    ADD COLUMN IF NOT EXISTS subjects_covered Array(String) AFTER subject;

-- A withdrawal applies to every id of the subject's person: the gateway records it once per linked id, and those
-- copies name the id the user withdrew under.
ALTER TABLE consent_history
    ADD COLUMN IF NOT EXISTS linked_from Nullable(String) AFTER subject;
