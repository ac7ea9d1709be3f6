"""Live counters: what they count, and that persist + restore + replay counts every event exactly once."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pravis_stream.partition_state import LiveState
from pravis_stream.views import summary, timeseries

from .events import ai, api, encode, row

NOW = datetime(2026, 11, 25, 12, 30, 30, tzinfo=UTC)


def state(now: datetime = NOW, partitions=(0,)) -> LiveState:
    live = LiveState(len(partitions), 24 * 60, 5.0, 0.5, (now - timedelta(minutes=10)).timestamp())
    for p in partitions:
        live.assign(p, [])
    return live


def mixed_rows(now: datetime) -> list[dict]:
    return [
        row("page_view", now, user="u1"),
        row("page_view", now, user="u2"),
        row("error", now, user="u3", error_type="TypeError"),
        api(now, status=200, ms=10, cache_hit=True),
        api(now, status=200, ms=30, cache_hit=False),
        api(now, status=503, ms=90),
        api(now, endpoint="/api/v1/cart", status=404, ms=5),
        ai(now, success=True, ms=400),
        ai(now, success=False, ms=800),
        row("feedback", now, rating=5, comment="Great, I love it"),
        row("feedback", now, rating=4, comment="It was terrible and slow"),
    ]


def test_summary_counts_every_metric():
    live = state()
    live.add_records(0, [(i, encode([r])) for i, r in enumerate(mixed_rows(NOW))], NOW)

    body = summary(live, "p1", "5m", NOW)

    assert body["events"]["total"] == 11
    assert body["events"]["by_type"] == {
        "api_request": 4,
        "error": 1,
        "feedback": 2,
        "page_view": 2,
        "voice_request": 2,
    }
    assert body["errors"] == {"failures": 3, "error_events": 1, "error_rate": round(3 / 11, 6)}
    items = body["api"]["endpoints"]["/api/v1/items"]
    assert (items["requests"], items["server_errors"], items["error_rate"]) == (3, 1, round(1 / 3, 6))
    assert items["cache_hit_ratio"] == 0.5
    assert items["latency_ms"] == {"p50": 30.0, "p95": 90.0, "p99": 90.0}
    assert body["api"]["endpoints"]["/api/v1/cart"]["client_errors"] == 1
    assert body["ai"]["success_rate"] == 0.5
    assert body["ai"]["by_model"][0]["model"] == "whisper-small"
    assert body["feedback"] == {"count": 2, "negative": 1, "average_rating": 4.5}
    assert body["active_users"]["last_5m"] == 3
    assert body["active_users"]["today"] == 3


def test_feedback_is_scored_for_publishing():
    live = state()
    result = live.add_records(0, [(0, encode(mixed_rows(NOW)))], NOW)
    assert [(s.rating, s.sentiment_label.value) for s in result.scored] == [(5, "positive"), (4, "negative")]


def test_open_text_survey_answers_are_scored_once_for_publishing():
    answers = [
        {"question_id": "nps", "value": 3, "choices": []},
        {"question_id": "why", "choices": [], "text": "The checkout is painfully slow"},
        {"question_id": "else", "choices": [], "text": "   "},
    ]
    answered = row("survey_answered", NOW, survey_id="ux", survey_version=2, survey_answers=answers)
    live = state()

    first = live.add_records(0, [(0, encode([answered]))], NOW)
    again = live.add_records(0, [(1, encode([answered]))], NOW)  # a client retry of the same event

    assert [(s.event_id, s.question_id, s.survey_version) for s in first.scored_answers] == [
        (answered["event_id"], "why", 2)
    ]
    assert first.scored_answers[0].sentiment_label.value == "negative"
    assert again.scored_answers == [] and again.duplicates == 1


def test_windows_split_by_minute_and_span():
    live = state()
    old = NOW - timedelta(minutes=30)
    earlier, current = [row("page_view", old) for _ in range(4)], [row("page_view", NOW) for _ in range(2)]
    live.add_records(0, [(0, encode(earlier)), (1, encode(current))], NOW)

    assert summary(live, "p1", "5m", NOW)["events"]["total"] == 2
    assert summary(live, "p1", "1h", NOW)["events"]["total"] == 6
    series = timeseries(live, "p1", 31, NOW)["minutes"]
    assert [m["events"] for m in series][:1] + [m["events"] for m in series][-1:] == [4, 2]
    assert sum(m["events"] for m in series) == 6


def test_malformed_rows_are_dropped_with_their_offset():
    live = state()
    result = live.add_records(
        0, [(7, b'{"event_type": "page_view"}\nnot json\n' + encode([row("tts", NOW)]))], NOW
    )
    assert [d.offset for d in result.dropped] == [7, 7, 7]  # the tts row lacks its AI fields
    assert summary(live, "p1", "5m", NOW)["events"]["total"] == 0


def test_events_older_than_retention_are_not_counted():
    live = state()
    result = live.add_records(0, [(0, encode([row("page_view", NOW - timedelta(days=2))]))], NOW)
    assert result.expired == 1
    assert live.projects() == []


class Table:
    """What the Faust changelog table holds: the last value written per key."""

    def __init__(self):
        self.data: dict[str, bytes] = {}

    def apply(self, writes):
        for key, value in writes:
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value


def records_for(n: int) -> list[tuple[int, bytes]]:
    """n records over three minutes and two projects, some with several rows."""
    out = []
    for offset in range(n):
        moment = NOW - timedelta(minutes=2) + timedelta(seconds=offset)
        rows = [api(moment, status=500 if offset % 7 == 0 else 200, user=f"u{offset % 13}")]
        if offset % 3 == 0:
            rows.append(row("page_view", moment, project="p2", user=f"u{offset}"))
        out.append((offset, encode(rows)))
    return out


@pytest.mark.parametrize("writes_kept", [0, 1, 2, 3, 4, 5, None])
def test_restart_counts_every_event_once_whatever_persisted(writes_kept):
    records = records_for(150)
    reference = state()
    reference.add_records(0, records, NOW)

    first, table = state(), Table()
    first.add_records(0, records[:50], NOW)
    table.apply(first.drain_writes(0, NOW))
    first.add_records(0, records[50:100], NOW)
    writes = first.drain_writes(0, NOW)
    kept = writes if writes_kept is None else writes[:writes_kept]  # killed mid-persist
    table.apply(kept)
    first.add_records(0, records[100:120], NOW)  # counted, never persisted

    second = state()
    position = second.assign(0, list(table.data.items()))
    assert position in (50, 100)
    result = second.add_records(0, records[position:], NOW)

    for project in ("p1", "p2"):
        assert summary(second, project, "1h", NOW) == summary(reference, project, "1h", NOW)
    window_kept = any("/m/" in key for key, _ in kept)
    assert (result.replayed > 0) == (window_kept and writes_kept is not None)


def test_drain_writes_stamp_position_and_expire_old_windows():
    live = state()
    live.add_records(0, [(41, encode([row("page_view", NOW)]))], NOW)
    writes = dict(live.drain_writes(0, NOW))
    assert orjson.loads(writes["0/cursor"]) == {"position": 42}
    assert orjson.loads(writes["0/m/2026-11-25T12:30/p1"])["next_offset"] == 42
    assert live.drain_writes(0, NOW) == [("0/cursor", b'{"position":42}')]

    later = NOW + timedelta(hours=24, minutes=1)
    assert dict(live.drain_writes(0, later))["0/m/2026-11-25T12:30/p1"] is None
    assert live.projects() == []


def test_detection_buckets_close_with_empty_ones_for_known_projects():
    start = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    live = LiveState(2, 60, 5.0, 0.5, start.timestamp())
    live.assign(0, [])
    live.assign(1, [])
    errors = [row("error", start + timedelta(seconds=1), error_type="E") for _ in range(3)]
    live.add_records(0, [(0, encode(errors))], start)
    live.add_records(1, [(0, encode([row("page_view", start + timedelta(seconds=11))]))], start)

    assert live.close_buckets(start.timestamp() + 5.2) == []  # still within the grace
    summaries = live.close_buckets(start.timestamp() + 15.6)

    assert [(s["bucket_start"] - start.timestamp(), s["window"]["events"]) for s in summaries] == [
        (0.0, 3),
        (5.0, 0),
        (10.0, 1),
    ]
    assert summaries[0]["partitions"] == [0, 1] and summaries[0]["total_partitions"] == 2
    late = live.add_records(0, [(1, encode([row("page_view", start + timedelta(seconds=2))]))], start)
    assert late.late == [0.0]  # counted in its minute, its detection bucket closed already


def test_records_delivered_again_are_not_counted_twice():
    live = state()
    records = [(i, encode([row("page_view", NOW)])) for i in range(10)]
    live.add_records(0, records[:6], NOW)
    live.add_records(0, records[3:], NOW)  # a fetch from before a re-seek, then the rest
    assert summary(live, "p1", "5m", NOW)["events"]["total"] == 10
    assert live.partitions[0].position == 10
