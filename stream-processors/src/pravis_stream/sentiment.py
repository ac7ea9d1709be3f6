"""Feedback sentiment (pure): VADER's compound score of the comment, labelled as VADER recommends; the
open-text answers of a `survey_answered` event are scored the same way, one message per answer.

vaderSentiment works offline (its lexicon ships in the wheel). A feedback event without a comment gets no
score; it still counts as negative feedback for alerting when its rating is low. A blank answer gets none.
"""

from datetime import datetime
from typing import Any

from pravis_schemas.messages import ScoredFeedback, ScoredSurveyAnswer, SentimentLabel
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

POSITIVE_AT = 0.05
NEGATIVE_AT = -0.05
LOW_RATING = 2
"""Ratings at or below this count as negative feedback whatever the comment says."""

_analyzer = SentimentIntensityAnalyzer()


def label(score: float) -> SentimentLabel:
    if score >= POSITIVE_AT:
        return SentimentLabel.POSITIVE
    if score <= NEGATIVE_AT:
        return SentimentLabel.NEGATIVE
    return SentimentLabel.NEUTRAL


def score(text: str) -> float:
    return _analyzer.polarity_scores(text)["compound"]


def score_feedback(event: dict[str, Any], scored_at: datetime) -> ScoredFeedback:
    """A `feedback` row of the events topic (a dict) with its comment's sentiment."""
    comment = event.get("comment")
    value = score(comment) if comment and comment.strip() else None
    return ScoredFeedback(
        event_id=event["event_id"],
        project_id=event["project_id"],
        timestamp=event["timestamp"],
        user_id=event.get("user_id"),
        anonymous_id=event.get("anonymous_id"),
        session_id=event.get("session_id"),
        interaction_id=event.get("interaction_id"),
        rating=event["rating"],
        comment=comment,
        context=event.get("context"),
        sentiment_score=value,
        sentiment_label=label(value) if value is not None else None,
        scored_at=scored_at,
    )


def score_survey_answers(event: dict[str, Any], scored_at: datetime) -> list[ScoredSurveyAnswer]:
    """The sentiment of each non-blank open-text answer of a `survey_answered` row of the events topic."""
    scored = []
    for answer in event.get("survey_answers") or ():
        text = answer.get("text")
        if not text or not text.strip():
            continue
        value = score(text)
        scored.append(
            ScoredSurveyAnswer(
                event_id=event["event_id"],
                project_id=event["project_id"],
                timestamp=event["timestamp"],
                user_id=event.get("user_id"),
                anonymous_id=event.get("anonymous_id"),
                survey_id=event["survey_id"],
                survey_version=event["survey_version"],
                question_id=answer["question_id"],
                sentiment_score=value,
                sentiment_label=label(value),
                scored_at=scored_at,
            )
        )
    return scored


def is_negative(scored: ScoredFeedback) -> bool:
    return scored.rating <= LOW_RATING or scored.sentiment_label is SentimentLabel.NEGATIVE
