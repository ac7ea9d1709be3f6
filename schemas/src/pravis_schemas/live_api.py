"""The stream tier's live API as one contract: the JSON bodies of `/live/{project_id}/summary`, `/timeseries`,
`/alerts` and `/live/projects`. The stream tier builds them, the dashboards validate what they read.

Field order is the order of the keys on the wire. The bodies describe a project across partitions, never a
worker's internals, so that the states of several workers can be merged behind the same shape. Timestamps stay
the strings that are sent (`...Z`, minutes as `YYYY-MM-DDTHH:MM:00Z`) so that reading and writing a body keeps
its bytes.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict

from pravis_schemas.messages import Alert

SummaryWindow = Literal["5m", "1h", "24h", "today"]
"""The `window` of `/summary`: the last 5 minutes, hour or 24 hours (whole minutes), or the UTC day so far."""

SUMMARY_WINDOWS: tuple[SummaryWindow, ...] = ("5m", "1h", "24h", "today")

WINDOW_MINUTES: dict[SummaryWindow, int] = {"5m": 5, "1h": 60, "24h": 24 * 60}
"""Minutes spanned by each rolling window (`today` depends on the time of day)."""


class LiveBody(BaseModel):
    """A part of a live API body: exact fields, so a misspelt or stray key fails where it is made or read."""

    model_config = ConfigDict(extra="forbid")


class LatencyMs(LiveBody):
    """Latency quantiles in milliseconds, from a KLL sketch; absent (null) when nothing was measured."""

    p50: float
    p95: float
    p99: float


class ActiveUsers(LiveBody):
    """Distinct users (HyperLogLog estimates) in rolling spans, and the estimates' relative standard error."""

    last_5m: int
    last_1h: int
    today: int
    relative_error: float


class EventCounts(LiveBody):
    total: int
    per_minute: float
    by_type: dict[str, int]


class Errors(LiveBody):
    """`failures`: error events, API 5xx and failed AI interactions; `error_rate` = failures / events."""

    failures: int
    error_events: int
    error_rate: float | None


class EndpointStats(LiveBody):
    """`api_request` events of one endpoint; rates are null when there is nothing to divide by."""

    requests: int
    server_errors: int
    client_errors: int
    error_rate: float | None
    cache_hit_ratio: float | None
    latency_ms: LatencyMs | None


class ApiStats(EndpointStats):
    """Every endpoint together, then each endpoint by path (sorted)."""

    endpoints: dict[str, EndpointStats]


class ModelStats(LiveBody):
    """AI interactions of one event type and model (`model` null when the event named none)."""

    event_type: str
    model: str | None
    requests: int
    success_rate: float | None
    latency_ms: LatencyMs | None


class AiStats(LiveBody):
    requests: int
    success_rate: float | None
    by_model: list[ModelStats]


class FeedbackStats(LiveBody):
    count: int
    negative: int
    average_rating: float | None


class LiveSummary(LiveBody):
    """`GET /live/{project_id}/summary?window=`: the window's counts; `active_users` always covers 5 minutes,
    an hour and the UTC day. `partitions` are those of `total_partitions` that the answer covers."""

    project_id: str
    as_of: str
    window: SummaryWindow
    window_start: str
    partitions: list[int]
    total_partitions: int
    active_users: ActiveUsers
    events: EventCounts
    errors: Errors
    api: ApiStats
    ai: AiStats
    feedback: FeedbackStats


class MinuteRow(LiveBody):
    """One minute of `/timeseries`, zeros (and null rates) for a minute without events."""

    minute: str
    events: int
    by_type: dict[str, int]
    failures: int
    error_rate: float | None
    api_requests: int
    api_error_rate: float | None
    api_latency_ms: LatencyMs | None
    active_users: int
    feedback: int


class LiveTimeseries(LiveBody):
    """`GET /live/{project_id}/timeseries?minutes=N`: N rows, oldest first."""

    project_id: str
    partitions: list[int]
    minutes: list[MinuteRow]


class LiveAlerts(LiveBody):
    """`GET /live/{project_id}/alerts`: the alerts firing now, as published on the `alerts` topic."""

    project_id: str
    firing: list[Alert]


class LiveProjects(LiveBody):
    """`GET /live/projects`: the projects with counted events, sorted."""

    projects: list[str]
