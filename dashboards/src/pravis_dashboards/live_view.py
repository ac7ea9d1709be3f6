"""What the Live page shows, cut from the stream tier's live API answers (pure: no I/O)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pravis_dashboards.live import LiveSnapshot


def live_view(snapshot: LiveSnapshot) -> dict[str, Any]:
    """Headline numbers (active users in the last 5 minutes, events/min, error rate, open alerts) and the
    per-minute series of the Live page, from `/summary?window=5m`, `/timeseries` and `/alerts`; and the
    partitions the answers lack (a stream worker that did not answer in time), so the page says it is partial
    rather than showing smaller numbers as if they were whole."""
    summary, minutes, firing = snapshot.summary, snapshot.timeseries.minutes, snapshot.alerts.firing
    covered = set(summary.partitions) & set(snapshot.timeseries.partitions)
    return {
        "as_of": summary.as_of,
        "missing_partitions": sorted(set(range(summary.total_partitions)) - covered),
        "active_users": summary.active_users.last_5m,
        "active_users_1h": summary.active_users.last_1h,
        "events_per_minute": summary.events.per_minute,
        "events": summary.events.total,
        "error_rate": summary.errors.error_rate,
        "api_error_rate": summary.api.error_rate,
        "open_alerts": len(firing),
        "alerts": [
            {
                "metric": alert["metric"],
                "severity": alert["severity"],
                "labels": alert["labels"],
                "started_at": alert["started_at"],
            }
            for alert in (firing_alert.model_dump(mode="json") for firing_alert in firing)
        ],
        "minutes": [row.minute[11:16] for row in minutes],
        "series": [
            {"name": "events", "data": [row.events for row in minutes]},
            {"name": "active_users", "data": [row.active_users for row in minutes]},
            {"name": "failures", "data": [row.failures for row in minutes]},
        ],
    }
