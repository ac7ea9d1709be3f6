"""The live API answers keep their bytes: `live_api_bodies.json` was captured once from the code before the
bodies were built from `pravis_schemas.live_api` (commit 0369507), by serialising each body below with the
JSON encoder Faust's web views use. A dashboard or script that reads the live API must see no change."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from faust.utils import json as faust_json
from pravis_schemas.messages import Alert, AlertStatus, Severity
from pravis_stream.partition_state import LiveState
from pravis_stream.views import firing_alerts, projects, summary, timeseries

from .events import ai, api, encode, row

NOW = datetime(2026, 11, 25, 12, 30, 30, tzinfo=UTC)
CAPTURED = orjson.loads((Path(__file__).parent / "live_api_bodies.json").read_bytes())


def rows_at(moment: datetime, minute: int) -> list[dict]:
    """A mix of every block of the summary, varied by minute so that each minute's row differs."""
    return [
        row("page_view", moment, user=f"u{minute % 7}"),
        row("button_click", moment, user=f"u{minute % 5}"),
        *([row("error", moment, user="u9", error_type="TypeError")] if minute % 4 == 0 else []),
        api(moment, status=200, ms=10 + minute, cache_hit=minute % 2 == 0),
        api(moment, status=503 if minute % 6 == 0 else 200, ms=90),
        api(moment, endpoint="/api/v1/cart", status=404, ms=5),
        ai(moment, success=minute % 3 != 0, ms=400 + minute),
        ai(moment, success=True, ms=250, model=""),
        row("tts", moment, interaction_id="i2", request_duration_ms=120, success=True, model_used="tts-1"),
        *([row("feedback", moment, rating=1 + minute % 5, comment="slow")] if minute % 2 else []),
        row("page_view", moment, project="p2", user="other"),
    ]


def live_state() -> LiveState:
    """Two partitions, events in the last two hours and the minute yesterday evening, one quiet project."""
    live = LiveState(2, 24 * 60, 5.0, 0.5, (NOW - timedelta(hours=20)).timestamp())
    live.assign(0, [])
    live.assign(1, [])
    for offset, minute in enumerate([*range(0, 120, 3), 900]):
        moment = NOW - timedelta(minutes=minute, seconds=minute % 50)
        live.add_records(minute % 2, [(offset, encode(rows_at(moment, minute)))], NOW)
    return live


def bodies() -> dict[str, bytes]:
    live = live_state()
    answers = {
        f"summary {project} {window}": summary(live, project, window, NOW)
        for project in ("p1", "p2", "absent")
        for window in ("5m", "1h", "24h", "today")
    }
    answers |= {
        f"timeseries {project} {minutes}": timeseries(live, project, minutes, NOW)
        for project in ("p1", "absent")
        for minutes in (1, 7, 130)
    }
    return {name: faust_json.dumps(body) for name, body in answers.items()}


@pytest.mark.parametrize("name", sorted(CAPTURED))
def test_live_api_bodies_keep_their_bytes(name):
    body = bodies()[name]
    assert (body.decode() if isinstance(body, bytes) else body) == CAPTURED[name]


def test_every_captured_body_is_checked():
    assert sorted(bodies()) == sorted(CAPTURED)


def test_alerts_answer_lists_the_firing_alerts_as_the_detector_holds_them():
    held = Alert(
        alert_id="p1:latency_p95_ms:/pay:1764073800",
        status=AlertStatus.FIRING,
        severity=Severity.WARNING,
        project_id="p1",
        metric="latency_p95_ms",
        labels={"endpoint": "/pay"},
        observed=412.5,
        expected=80.25,
        window_start=NOW - timedelta(seconds=5),
        window_end=NOW,
        started_at=NOW,
        message="p95 latency up",
    ).model_dump(mode="json")
    before = {"project_id": "p1", "firing": [held]}
    assert faust_json.dumps(firing_alerts("p1", [held])) == faust_json.dumps(before)
    assert faust_json.dumps(firing_alerts("p2", [])) == faust_json.dumps({"project_id": "p2", "firing": []})


def test_projects_answer_lists_the_counted_projects():
    assert faust_json.dumps(projects(live_state())) == faust_json.dumps({"projects": ["p1", "p2"]})
