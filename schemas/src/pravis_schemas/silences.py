"""Alert silences: the message of the `alerts.silences` topic and which alerts a silence holds back (pure).

`pravis alerts silence` writes one `Silence` per silence, key `silence_id`; `pravis alerts expire` writes the
same id again with `ends_at` set to the moment of expiry, so the latest record of an id is the silence as it
stands. Every stream worker reads the whole topic (no consumer group) and keeps the silences not yet ended:
a silenced alert is still detected, tracked and published on `alerts`, only not sent to the sinks.

Why a topic and not a warehouse table: the stream tier already reads Kafka and never talks to ClickHouse, a
topic reaches every worker within one fetch without polling, and a worker that starts reads it from the
beginning like any other state it recovers.
"""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pravis_schemas.events import UtcDatetime
from pravis_schemas.messages import Alert

ALERT_METRICS = (
    "error_rate",
    "api_error_rate",
    "latency_p95_ms",
    "traffic_spike",
    "traffic_drop",
    "ai_success_rate",
    "negative_feedback",
    "new_error_pattern",
)
"""The series the stream tier's detector judges (`pravis_stream.detector`); a silence names one of them."""
MAX_LABELS = 10
"""Label matchers per silence; an alert carries at most a few labels (endpoint, event_type, model)."""


class Silence(BaseModel):
    """Holds back the alerts of one project and metric whose labels include every `labels` pair, from
    `starts_at` (inclusive) to `ends_at` (exclusive)."""

    model_config = ConfigDict(extra="forbid")

    silence_id: Annotated[str, Field(min_length=1, max_length=100)]
    project_id: Annotated[str, Field(min_length=1, max_length=200)]
    metric: Literal[ALERT_METRICS]  # type: ignore[valid-type]
    labels: Annotated[dict[str, str], Field(max_length=MAX_LABELS)] = Field(default_factory=dict)
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    created_by: Annotated[str, Field(max_length=200)] = ""
    comment: Annotated[str, Field(min_length=1, max_length=2000)]

    @model_validator(mode="after")
    def _ends_after_start(self) -> "Silence":
        if self.ends_at < self.starts_at:
            raise ValueError("ends_at must not be before starts_at")
        return self

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, alert: Alert) -> bool:
        return (
            alert.project_id == self.project_id
            and alert.metric == self.metric
            and all(alert.labels.get(key) == value for key, value in self.labels.items())
        )

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)
