"""Feedback sentiment: VADER's compound score and the recommended ±0.05 labels."""

from datetime import UTC, datetime

import pytest
from pravis_schemas.messages import SentimentLabel
from pravis_stream.sentiment import is_negative, label, score_feedback

from .events import row

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("score", "expected"),
    [(0.05, "positive"), (0.049, "neutral"), (0.0, "neutral"), (-0.049, "neutral"), (-0.05, "negative")],
)
def test_labels_follow_vader_thresholds(score, expected):
    assert label(score) == SentimentLabel(expected)


def test_feedback_is_scored_and_keeps_its_fields():
    event = row("feedback", NOW, rating=5, comment="The voice search is fantastic!", interaction_id="i-9")
    scored = score_feedback(event, NOW)
    assert scored.sentiment_label is SentimentLabel.POSITIVE and scored.sentiment_score > 0.5
    assert (scored.event_id, scored.interaction_id, scored.project_id) == (event["event_id"], "i-9", "p1")
    assert not is_negative(scored)


def test_negative_comment_or_low_rating_is_negative_feedback():
    angry = score_feedback(row("feedback", NOW, rating=4, comment="Awful, it never understands me"), NOW)
    silent_low = score_feedback(row("feedback", NOW, rating=1), NOW)
    assert angry.sentiment_label is SentimentLabel.NEGATIVE and is_negative(angry)
    assert (
        silent_low.sentiment_score is None and silent_low.sentiment_label is None and is_negative(silent_low)
    )
    assert b"sentiment_score" not in silent_low.to_json()
