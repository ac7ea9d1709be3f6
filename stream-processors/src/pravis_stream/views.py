"""The live API's views (pure, no I/O): the JSON bodies of `/live/{project_id}/summary`, `/timeseries`,
`/alerts` and `/live/projects`, built from mergeable parts (`live_parts`: this worker's, or every worker's
merged) as the models of `pravis_schemas.live_api` (the contract the dashboards read) and dumped for the web
layer. Called only when a request is answered, never on the hot path."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pravis_schemas.live_api import (
    WINDOW_MINUTES,
    ActiveUsers,
    AiStats,
    ApiStats,
    EndpointStats,
    Errors,
    EventCounts,
    FeedbackStats,
    LatencyMs,
    LiveAlerts,
    LiveProjects,
    LiveSummary,
    LiveTimeseries,
    MinuteRow,
    ModelStats,
    SummaryWindow,
)

from pravis_stream.counters import Window, minute_key, minute_start
from pravis_stream.live_parts import MinuteParts, SummaryParts
from pravis_stream.partition_state import LiveState
from pravis_stream.sketches import HLL_RELATIVE_ERROR, distinct, new_kll, quantiles


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _latency(sketch: Any) -> LatencyMs | None:
    values = quantiles(sketch)
    return LatencyMs(p50=values[0], p95=values[1], p99=values[2]) if values else None


def _api_stats(window: Window, per_endpoint: bool = True) -> ApiStats:
    """The window's `api_request` totals, and each endpoint's unless `per_endpoint` is false (a timeseries
    row shows only the totals, and an endpoint's quantiles and models are most of the cost)."""
    latency = new_kll()
    requests = server = client = hits = known = 0
    endpoints = {}
    for endpoint, stats in sorted(window.api.items()):
        latency.merge(stats.latency)
        requests += stats.count
        server += stats.server_errors
        client += stats.client_errors
        hits += stats.cache_hits
        known += stats.cache_known
        if per_endpoint:
            endpoints[endpoint] = EndpointStats(
                requests=stats.count,
                server_errors=stats.server_errors,
                client_errors=stats.client_errors,
                error_rate=_rate(stats.server_errors, stats.count),
                cache_hit_ratio=_rate(stats.cache_hits, stats.cache_known),
                latency_ms=_latency(stats.latency),
            )
    return ApiStats(
        requests=requests,
        server_errors=server,
        client_errors=client,
        error_rate=_rate(server, requests),
        cache_hit_ratio=_rate(hits, known),
        latency_ms=_latency(latency),
        endpoints=endpoints,
    )


def _ai_stats(window: Window) -> AiStats:
    requests = sum(stats.count for stats in window.ai.values())
    success = sum(stats.success for stats in window.ai.values())
    return AiStats(
        requests=requests,
        success_rate=_rate(success, requests),
        by_model=[
            ModelStats(
                event_type=event_type,
                model=model or None,
                requests=stats.count,
                success_rate=_rate(stats.success, stats.count),
                latency_ms=_latency(stats.latency),
            )
            for (event_type, model), stats in sorted(window.ai.items())
        ],
    )


def _span_start(name: SummaryWindow, now: datetime) -> str:
    if name == "today":
        return now.astimezone(UTC).strftime("%Y-%m-%dT00:00")
    return minute_key(now - timedelta(minutes=WINDOW_MINUTES[name] - 1))


def summary_starts(window_name: SummaryWindow, now: datetime) -> tuple[str, list[str]]:
    """The first minute of the window, and of the spans `active_users` covers (5 minutes, hour, UTC day)."""
    return _span_start(window_name, now), [_span_start(name, now) for name in ("5m", "1h", "today")]


def summary(state: LiveState, project: str, window_name: SummaryWindow, now: datetime) -> dict[str, Any]:
    """`summary_body` of the partitions this worker holds."""
    window_start, user_starts = summary_starts(window_name, now)
    parts = state.summary_parts(project, window_start, user_starts, state.owned())
    return summary_body(parts, state.total_partitions, project, window_name, now)


def summary_body(
    parts: SummaryParts, total_partitions: int, project: str, window_name: SummaryWindow, now: datetime
) -> dict[str, Any]:
    """JSON of `GET /live/{project_id}/summary?window=...`: a `LiveSummary` of the parts' partitions."""
    span_start, (five_start, hour_start, day_start) = summary_starts(window_name, now)
    span = parts.window
    span_minutes = (minute_start(minute_key(now)) - minute_start(span_start)) // timedelta(minutes=1) + 1
    return LiveSummary(
        project_id=project,
        as_of=now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        window=window_name,
        window_start=span_start + ":00Z",
        partitions=sorted(parts.partitions),
        total_partitions=total_partitions,
        active_users=ActiveUsers(
            last_5m=distinct([parts.users[five_start]]),
            last_1h=distinct([parts.users[hour_start]]),
            today=distinct([parts.users[day_start]]),
            relative_error=round(HLL_RELATIVE_ERROR, 4),
        ),
        events=EventCounts(
            total=span.events,
            per_minute=round(span.events / span_minutes, 3),
            by_type=dict(sorted(span.by_type.items())),
        ),
        errors=Errors(
            failures=span.failures,
            error_events=span.by_type.get("error", 0),
            error_rate=_rate(span.failures, span.events),
        ),
        api=_api_stats(span),
        ai=_ai_stats(span),
        feedback=FeedbackStats(
            count=span.feedback,
            negative=span.negative_feedback,
            average_rating=round(span.rating_sum / span.feedback, 3) if span.feedback else None,
        ),
    ).model_dump(mode="json")


def timeseries_keys(minutes: int, now: datetime) -> list[str]:
    """The minute keys of the last `minutes` minutes, oldest first."""
    last = minute_start(minute_key(now))
    return [minute_key(last - timedelta(minutes=i)) for i in range(minutes - 1, -1, -1)]


def timeseries(state: LiveState, project: str, minutes: int, now: datetime) -> dict[str, Any]:
    """`timeseries_body` of the partitions this worker holds."""
    parts = state.minute_parts(project, timeseries_keys(minutes, now)[0], state.owned())
    return timeseries_body(parts, project, minutes, now)


def timeseries_body(parts: MinuteParts, project: str, minutes: int, now: datetime) -> dict[str, Any]:
    """JSON of `GET /live/{project_id}/timeseries?minutes=N`: a `LiveTimeseries` of the parts' partitions, one
    row per minute, oldest first, zeros included."""
    rows = []
    for key in timeseries_keys(minutes, now):
        window = parts.minutes.get(key)
        if window is None:
            window = Window(with_users=False)
        api = _api_stats(window, per_endpoint=False)
        rows.append(
            MinuteRow(
                minute=key + ":00Z",
                events=window.events,
                by_type=dict(sorted(window.by_type.items())),
                failures=window.failures,
                error_rate=_rate(window.failures, window.events),
                api_requests=api.requests,
                api_error_rate=api.error_rate,
                api_latency_ms=api.latency_ms,
                active_users=distinct([window.users]) if window.users is not None else 0,
                feedback=window.feedback,
            )
        )
    return LiveTimeseries(project_id=project, partitions=sorted(parts.partitions), minutes=rows).model_dump(
        mode="json"
    )


def firing_alerts(project: str, firing: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """JSON of `GET /live/{project_id}/alerts`: a `LiveAlerts` of the project's detector's firing alerts."""
    return LiveAlerts(project_id=project, firing=list(firing)).model_dump(mode="json")


def projects(state: LiveState) -> dict[str, Any]:
    """`projects_body` of the partitions this worker holds."""
    return projects_body(state.projects())


def projects_body(found: list[str]) -> dict[str, Any]:
    """JSON of `GET /live/projects`: a `LiveProjects`."""
    return LiveProjects(projects=sorted(found)).model_dump(mode="json")
