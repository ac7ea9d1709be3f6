"""The stored checkpoint and the detection bucket summaries keep their bytes across code changes.

`checkpoint_before_split.json` was captured once from the code before `pravis_stream/live.py` was split
(commit edb0688): `LiveState(1, 24 * 60, 5.0, 0.5, NOW - 10 min)` fed `RECORDS` below, then `drain_writes(0,
NOW)` (the `live` table's changelog values, by key) and `close_buckets(NOW + 1 s)` (the `<app>-buckets`
messages, `orjson.dumps` of each). A worker restarted on new code must restore what the old code persisted,
and a detector must read summaries an old worker published.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from pravis_stream.partition_state import LiveState
from pravis_stream.views import summary

from .events import ai, api, encode, row

NOW = datetime(2026, 11, 25, 12, 30, 30, tzinfo=UTC)
WRITTEN_BEFORE_SPLIT = orjson.loads((Path(__file__).parent / "checkpoint_before_split.json").read_bytes())


def at(minute: int, second: int) -> datetime:
    return datetime(2026, 11, 25, 12, minute, second, tzinfo=UTC)


RECORDS = [
    (0, encode([row("page_view", at(28, 5), user="u1"), row("page_view", at(28, 5), user="u2")])),
    (1, encode([api(at(28, 40), status=200, ms=10, cache_hit=True)])),
    (
        2,
        encode(
            [
                api(at(29, 10), status=503, ms=90),
                api(at(29, 10), endpoint="/api/v1/cart", status=404, ms=5, cache_hit=False),
            ]
        ),
    ),
    (3, encode([ai(at(29, 20), success=True, ms=400)])),
    (4, encode([row("tts", at(29, 50), interaction_id="i2", request_duration_ms=250, success=False)])),
    (
        5,
        encode(
            [
                row("error", at(30, 1), user="u3", error_type="TypeError"),
                row("feedback", at(30, 2), rating=5, comment="Great, I love it"),
            ]
        ),
    ),
    (
        6,
        encode(
            [
                row("feedback", at(30, 3), rating=2),
                row("page_view", at(30, 4), project="p2", user=None, anonymous_id="a1"),
            ]
        ),
    ),
]


def new_state() -> LiveState:
    state = LiveState(1, 24 * 60, 5.0, 0.5, (NOW - timedelta(minutes=10)).timestamp())
    state.assign(0, [])
    return state


def test_a_checkpoint_written_before_the_split_is_restored():
    restored = LiveState(1, 24 * 60, 5.0, 0.5, NOW.timestamp())
    stored = [(key, value.encode()) for key, value in WRITTEN_BEFORE_SPLIT["writes"].items()]

    assert restored.assign(0, stored) == 7
    body = summary(restored, "p1", "1h", NOW)

    assert body["events"]["total"] == 10
    assert body["events"]["by_type"] == {
        "api_request": 3,
        "error": 1,
        "feedback": 2,
        "page_view": 2,
        "tts": 1,
        "voice_request": 1,
    }
    assert body["errors"] == {"failures": 3, "error_events": 1, "error_rate": 0.3}
    assert body["active_users"]["last_1h"] == 3
    cart = body["api"]["endpoints"]["/api/v1/cart"]
    assert (cart["requests"], cart["client_errors"], cart["cache_hit_ratio"]) == (1, 1, 0.0)
    assert cart["latency_ms"] == {"p50": 5.0, "p95": 5.0, "p99": 5.0}
    items = body["api"]["endpoints"]["/api/v1/items"]
    assert (items["requests"], items["server_errors"], items["cache_hit_ratio"]) == (2, 1, 1.0)
    assert [
        (m["event_type"], m["model"], m["requests"], m["success_rate"]) for m in body["ai"]["by_model"]
    ] == [
        ("tts", None, 1, 0.0),
        ("voice_request", "whisper-small", 1, 1.0),
    ]
    assert body["ai"]["by_model"][0]["latency_ms"] == {"p50": 250.0, "p95": 250.0, "p99": 250.0}
    assert body["feedback"] == {"count": 2, "negative": 1, "average_rating": 3.5}
    other = summary(restored, "p2", "1h", NOW)
    assert (other["events"]["total"], other["active_users"]["last_1h"]) == (1, 1)


def test_windows_restored_without_their_cursor_skip_the_events_they_hold():
    restored = LiveState(1, 24 * 60, 5.0, 0.5, NOW.timestamp())
    windows = [(k, v.encode()) for k, v in WRITTEN_BEFORE_SPLIT["writes"].items() if k != "0/cursor"]

    assert restored.assign(0, windows) is None  # killed before the cursor was written: read from the start
    result = restored.add_records(0, RECORDS, NOW)

    assert result.replayed == 11
    assert summary(restored, "p1", "1h", NOW)["events"]["total"] == 10
    assert summary(restored, "p2", "1h", NOW)["events"]["total"] == 1


def test_the_same_records_are_checkpointed_to_the_same_bytes():
    state = new_state()
    state.add_records(0, RECORDS, NOW)

    writes = {key: value for key, value in state.drain_writes(0, NOW)}
    windows_and_cursor = {key: value for key, value in writes.items() if "/d/" not in key}

    assert windows_and_cursor == {k: v.encode() for k, v in WRITTEN_BEFORE_SPLIT["writes"].items()}
    # Added since: the 11 event ids counted, 8 bytes each (see test_event_time); old checkpoints lack them.
    assert sum(len(value) for key, value in writes.items() if "/d/" in key) == 8 * 11


def test_the_same_records_are_summarised_to_the_same_bucket_messages():
    state = new_state()
    state.add_records(0, RECORDS, NOW)

    summaries = state.close_buckets(NOW.timestamp() + 1.0)
    # Error fingerprints (issue 24) came later: buckets with failures carry them after the old fields, which
    # keep their bytes; a detector reads summaries without them (Window.from_json).
    patterns = [s["window"].pop("patterns", None) for s in summaries]
    published = [orjson.dumps(s) for s in summaries]

    assert published == [message.encode() for message in WRITTEN_BEFORE_SPLIT["bucket_summaries"]]
    assert [bool(p) for p in patterns] == [s["window"]["failures"] > 0 for s in summaries]
