-- VADER sentiment of each open-text answer of a `survey_answered` event (issue 23), from the stream tier through
-- topic `survey_answers.scored` (pravis_schemas.messages.ScoredSurveyAnswer), as `feedback_scored` holds the
-- sentiment of feedback comments. The text itself stays in `events.survey_answers`: join on (event_id,
-- question_id). A re-scored answer replaces the older row (the later scored_at wins). user_id/anonymous_id
-- make the rows part of a user's export and deletion (pravis_schemas.personal_data).
CREATE TABLE IF NOT EXISTS survey_answer_sentiment
(
    event_id UUID,
    project_id LowCardinality(String),
    timestamp DateTime64(3, 'UTC'),
    user_id Nullable(String),
    anonymous_id Nullable(String),
    survey_id String,
    survey_version UInt32,
    question_id String,
    sentiment_score Float64,
    sentiment_label LowCardinality(String),
    scored_at DateTime64(3, 'UTC'),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(scored_at)
PARTITION BY toYYYYMM(timestamp)
ORDER BY (project_id, event_id, question_id);
