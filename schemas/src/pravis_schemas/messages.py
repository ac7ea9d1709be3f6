"""Messages between workers other than raw events: anomaly alerts, sentiment-scored feedback and survey
answers.

They are written by the stream tier and loaded into ClickHouse tables of the same field names
(`alerts`, `feedback_scored`, `survey_answer_sentiment`) by the loader, with `INSERT ... FORMAT JSONEachRow`.
"""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from pravis_schemas.events import ConsentCategory, UtcDatetime


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(BaseModel):
    """A message of the `alerts` topic (key: `alert_id`). One `firing` message when an anomaly starts and one
    `resolved` message with the same `alert_id` when the metric is back to normal."""

    model_config = ConfigDict(extra="forbid")

    alert_id: Annotated[str, Field(min_length=1, max_length=200)]
    status: AlertStatus
    severity: Severity
    project_id: Annotated[str, Field(min_length=1, max_length=200)]
    metric: Annotated[str, Field(min_length=1, max_length=200, examples=["error_rate", "latency_p95_ms"])]
    labels: dict[str, str] = Field(default_factory=dict, examples=[{"endpoint": "/api/v1/products/{id}"}])
    observed: float
    expected: float
    window_start: UtcDatetime
    window_end: UtcDatetime
    started_at: UtcDatetime
    resolved_at: UtcDatetime | None = None
    message: Annotated[str, Field(max_length=2000)] = ""

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)


class SentimentLabel(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


class ScoredEvent(BaseModel):
    """What every sentiment message of the stream tier says of the event it scored (key: user id or
    anonymous id)."""

    model_config = ConfigDict(extra="forbid")

    event_id: str
    project_id: str
    timestamp: UtcDatetime
    user_id: str | None = None
    anonymous_id: str | None = None

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)


class ScoredFeedback(ScoredEvent):
    """A message of the `feedback.scored` topic: a feedback event with the sentiment of its comment.
    `sentiment_score` is VADER's compound score in [-1, 1]."""

    session_id: str | None = None
    interaction_id: str | None = None
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: str | None = None
    context: str | None = None
    sentiment_score: Annotated[float, Field(ge=-1.0, le=1.0)] | None = None
    sentiment_label: SentimentLabel | None = None
    scored_at: UtcDatetime


class ScoredSurveyAnswer(ScoredEvent):
    """A message of the `survey_answers.scored` topic: the sentiment of one open-text answer of a
    `survey_answered` event, scored as feedback comments are (the text stays in `events.survey_answers`;
    joined on event_id and question_id)."""

    survey_id: str
    survey_version: int
    question_id: str
    sentiment_score: Annotated[float, Field(ge=-1.0, le=1.0)]
    sentiment_label: SentimentLabel
    scored_at: UtcDatetime


class ConsentRecord(BaseModel):
    """A message of the `consent` topic (key: `project_id:subject`): the user's consent after a change.

    `subject` is the user_id, or the anonymous_id for users who never identified. Categories not listed keep
    their previous value (or the project's default policy). The `consent_history` table keeps every record,
    also after the subject's data was deleted (GDPR accountability: consent must be demonstrable)."""

    model_config = ConfigDict(extra="forbid")

    project_id: Annotated[str, Field(min_length=1, max_length=200)]
    subject: Annotated[str, Field(min_length=1, max_length=200)]
    consent: dict[ConsentCategory, bool]
    changed_at: UtcDatetime
    source: Annotated[str, Field(max_length=200)] | None = None
    erasure_request_id: Annotated[str, Field(max_length=64)] | None = None
    """Set on the withdrawal of every category that deletion request makes."""
    follows_erasure: Annotated[str, Field(max_length=64)] | None = None
    """Set by the gateway on a change for a subject whose data was deleted: the deletion it follows."""
    explicit: bool | None = None
    """The user acted just now (a banner click), as opposed to a stored choice replayed; a grant after a
    deletion needs it."""
    linked_from: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    """Set by the gateway on the copy of a withdrawal it records for another id of the same person: the
    subject the user withdrew under (a withdrawal follows the person, docs/identity.md)."""

    @property
    def key(self) -> bytes:
        return f"{self.project_id}:{self.subject}".encode()

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self, exclude_none=True)


# Which consent category an event needs. Consent changes themselves are always accepted: they are how the user
# states consent, and the history must be kept for GDPR accountability.
CATEGORY_OF_EVENT_TYPE: dict[str, ConsentCategory | None] = {
    "page_view": ConsentCategory.ANALYTICS,
    "button_click": ConsentCategory.ANALYTICS,
    "feature_use": ConsentCategory.ANALYTICS,
    "error": ConsentCategory.PERFORMANCE,
    "api_request": ConsentCategory.PERFORMANCE,
    "voice_request": ConsentCategory.PERFORMANCE,
    "transcription": ConsentCategory.PERFORMANCE,
    "tts": ConsentCategory.PERFORMANCE,
    "conversation": ConsentCategory.PERFORMANCE,
    "feedback": ConsentCategory.FEEDBACK,
    "experiment_exposure": ConsentCategory.PERSONALIZATION,
    "consent_change": None,
    "identify": ConsentCategory.ANALYTICS,
    "alias": ConsentCategory.ANALYTICS,
    "product_viewed": ConsentCategory.ANALYTICS,
    "product_added": ConsentCategory.ANALYTICS,
    "checkout_started": ConsentCategory.ANALYTICS,
    "order_completed": ConsentCategory.ANALYTICS,
    "order_refunded": ConsentCategory.ANALYTICS,
    "resource_sample": ConsentCategory.PERFORMANCE,
    "survey_shown": ConsentCategory.FEEDBACK,
    "survey_dismissed": ConsentCategory.FEEDBACK,
    "survey_answered": ConsentCategory.FEEDBACK,
    "feature_request": ConsentCategory.FEEDBACK,
    "feature_request_vote": ConsentCategory.FEEDBACK,
}


def consent_category(event_type: str) -> ConsentCategory | None:
    """The category an event of this type needs; custom events count as analytics."""
    return CATEGORY_OF_EVENT_TYPE.get(event_type, ConsentCategory.ANALYTICS)


class PrivacyRequest(BaseModel):
    """A message of the `privacy.requests` topic (key: `project_id:subject`)."""

    model_config = ConfigDict(extra="forbid")

    request_id: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Literal["delete"]
    project_id: Annotated[str, Field(min_length=1, max_length=200)]
    subject: Annotated[str, Field(min_length=1, max_length=200)]
    requested_by: Annotated[str, Field(max_length=200)]
    requested_at: UtcDatetime

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)
