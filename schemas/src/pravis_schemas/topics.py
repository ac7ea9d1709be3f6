"""Kafka topic names shared by every worker; create them explicitly, never by auto-create."""

EVENTS = "events"
"""Flat enriched events (see `pravis_schemas.events`), key: user_id or anonymous_id. A record holds one or
more events of that key, one JSON object per line (`record_of_rows` / `rows_of_record`)."""

EVENTS_REJECTED = "events.rejected"
"""`RejectedEvent` messages: events the gateway refused, with the reason and the raw text."""

CONSENT = "consent"
"""Consent changes; key: user_id."""

PRIVACY_REQUESTS = "privacy.requests"
"""User data export and deletion requests."""

ALERTS = "alerts"
"""Anomaly alerts raised by the stream tier."""

FEEDBACK_SCORED = "feedback.scored"
"""`ScoredFeedback` messages: feedback events with the sentiment of their comment, from the stream tier."""

SURVEY_ANSWERS_SCORED = "survey_answers.scored"
"""`ScoredSurveyAnswer` messages: the sentiment of each open-text answer of a `survey_answered` event, from
the stream tier (key: user id or anonymous id)."""

SILENCES = "alerts.silences"
"""`pravis_schemas.silences.Silence` messages, key: silence_id (the latest record of an id wins); one
partition, read whole by every stream worker."""

ALL_TOPICS: tuple[str, ...] = (
    EVENTS,
    EVENTS_REJECTED,
    CONSENT,
    PRIVACY_REQUESTS,
    ALERTS,
    FEEDBACK_SCORED,
    SILENCES,
    SURVEY_ANSWERS_SCORED,
)
