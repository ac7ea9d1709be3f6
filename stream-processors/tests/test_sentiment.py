"""Feedback sentiment: VADER's compound score and the recommended ±0.05 labels."""

from datetime import UTC, datetime

import pytest
from pravis_schemas.messages import SentimentLabel
from pravis_stream.sentiment import is_negative, label, score_feedback, score_survey_answers
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

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


SURVEY_TEXTS = [
    "I love the new voice search, it is fantastic!",
    "The app crashes constantly and I hate it.",
    "It is a phone app.",
    "Not bad at all :) but the export is SLOW!!!",
]


def test_open_text_survey_answers_get_vaders_own_scores_and_labels():
    """Expected scores come from the vaderSentiment package itself; labels from its ±0.05 thresholds."""
    reference = SentimentIntensityAnalyzer()
    answers = [{"question_id": f"q{i}", "choices": [], "text": text} for i, text in enumerate(SURVEY_TEXTS)]
    answers.insert(1, {"question_id": "nps", "value": 9, "choices": []})
    event = row("survey_answered", NOW, survey_id="ux", survey_version=3, survey_answers=answers)

    scored = score_survey_answers(event, NOW)

    assert [s.question_id for s in scored] == [f"q{i}" for i in range(len(SURVEY_TEXTS))]
    for text, message in zip(SURVEY_TEXTS, scored, strict=True):
        compound = reference.polarity_scores(text)["compound"]
        assert message.sentiment_score == compound
        expected = "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
        assert message.sentiment_label.value == expected
        assert (message.survey_id, message.survey_version, message.event_id) == ("ux", 3, event["event_id"])
    assert {s.sentiment_label.value for s in scored} == {"positive", "negative", "neutral"}
