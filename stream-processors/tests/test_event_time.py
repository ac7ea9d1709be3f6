"""Live windows in event time: late and old events, retries counted once, watermarks, and silence as an
anomaly. Every expectation is computed here from the events themselves (a plain Python model of the
documented rules), never by the code under test."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from pravis_schemas.messages import AlertStatus
from pravis_stream.dedup import EventIds, event_digest
from pravis_stream.detector import ProjectDetector, Thresholds
from pravis_stream.partition_state import LiveState
from pravis_stream.views import summary, timeseries

from .events import api, encode, iso, row
from .test_live import Table

NOW = datetime(2026, 11, 25, 12, 30, 30, tzinfo=UTC)
HORIZON = timedelta(hours=2)
THRESHOLDS = Thresholds(warmup=20, min_events=20, cooldown=10, resolve_after=3)


def one_partition(**options) -> LiveState:
    """A worker holding partition 0 of 1: 5 s detection buckets, 0.5 s allowed lateness, started at NOW."""
    live = LiveState(1, 24 * 60, 5.0, 0.5, NOW.timestamp(), **options)
    live.assign(0, [])
    return live


def arrived(event: dict, received: datetime) -> dict:
    """The event as the gateway publishes it when it reaches the gateway at `received`."""
    return {**event, "received_at": iso(received)}


def history_burst_and_retries(rng: random.Random) -> list[dict]:
    """In arrival order: a days-old history, steady live traffic over the last 20 minutes, a queue an
    offline client flushes an hour late, and 2% of everything redelivered later (same event_id)."""
    out = []
    for i in range(400):  # a 14-day history replayed now
        happened = NOW - timedelta(days=rng.uniform(0.2, 14))
        out.append(arrived(row("page_view", happened, user=f"old{i % 90}"), NOW - timedelta(seconds=30)))
    for i in range(1200):
        happened = NOW - timedelta(seconds=1200 - i)
        event = row("error" if i % 50 == 0 else "page_view", happened, user=f"u{i % 120}")
        out.append(arrived(event, happened + timedelta(milliseconds=300)))
    for i in range(300):  # queued offline an hour ago, flushed now
        happened = NOW - timedelta(minutes=61, seconds=rng.uniform(0, 50))
        out.append(arrived(row("error", happened, user=f"q{i % 40}"), NOW - timedelta(seconds=5)))
    retries = [arrived(e, NOW - timedelta(seconds=2)) for e in rng.sample(out, k=len(out) // 50)]
    return out + retries


def expected_counts(events: list[dict]) -> tuple[Counter, dict[str, set]]:
    """Events per minute and users per minute of the rules: event time, arrival within the horizon, once."""
    per_minute: Counter = Counter()
    users: dict[str, set] = {}
    ids = set()
    for event in events:
        happened = datetime.fromisoformat(event["timestamp"])
        received = datetime.fromisoformat(event["received_at"])
        if received - happened > HORIZON or event["event_id"] in ids:
            continue
        ids.add(event["event_id"])
        minute = happened.strftime("%Y-%m-%dT%H:%M")
        per_minute[minute] += 1
        users.setdefault(minute, set()).add(event["user_id"])
    return per_minute, users


def test_history_late_queue_and_retries_count_each_event_once_in_its_minute():
    events = history_burst_and_retries(random.Random(3))
    live = LiveState(1, 24 * 60, 5.0, 0.5, (NOW - timedelta(minutes=30)).timestamp())
    live.assign(0, [])
    results = [live.add_records(0, [(i, encode([e]))], NOW) for i, e in enumerate(events)]

    per_minute, users = expected_counts(events)

    def expected(since: datetime) -> tuple[int, int]:
        keys = [m for m in per_minute if m >= since.strftime("%Y-%m-%dT%H:%M")]
        return sum(per_minute[m] for m in keys), len(set().union(*(users[m] for m in keys)))

    for window, since in [
        ("5m", NOW - timedelta(minutes=4)),
        ("1h", NOW - timedelta(minutes=59)),
        ("24h", NOW - timedelta(hours=24) + timedelta(minutes=1)),
        ("today", NOW.replace(hour=0, minute=0)),
    ]:
        body = summary(live, "p1", window, NOW)
        total, _ = expected(since)
        assert body["events"]["total"] == total, window
    body = summary(live, "p1", "5m", NOW)
    assert body["active_users"]["last_5m"] == expected(NOW - timedelta(minutes=4))[1]
    assert body["active_users"]["last_1h"] == expected(NOW - timedelta(minutes=59))[1]
    assert body["active_users"]["today"] == expected(NOW.replace(hour=0, minute=0))[1]
    rows = timeseries(live, "p1", 90, NOW)["minutes"]
    assert {r["minute"][:16]: r["events"] for r in rows if r["events"]} == dict(per_minute)

    assert sum(len(r.too_late) for r in results) == 400 + sum(
        1 for e in events[1900:] if datetime.fromisoformat(e["timestamp"]) < NOW - HORIZON
    )
    assert all(delay > HORIZON.total_seconds() for r in results for delay in r.too_late)
    unique_counted = sum(per_minute.values())
    assert sum(r.counted for r in results) == unique_counted
    assert sum(r.duplicates for r in results) == len(events) - 1900 - sum(
        1 for e in events[1900:] if datetime.fromisoformat(e["timestamp"]) < NOW - HORIZON
    )


def test_timestamps_in_utc_count_whichever_way_they_are_written():
    live = one_partition()
    zulu = row("page_view", NOW)
    offset = {**row("page_view", NOW), "timestamp": NOW.isoformat(), "received_at": NOW.isoformat()}
    local = {**row("page_view", NOW), "timestamp": "2026-11-25T13:30:30+01:00"}
    result = live.add_records(0, [(0, encode([zulu, offset, local]))], NOW)
    assert result.counted == 2
    assert [d.reason for d in result.dropped] == [
        "ValueError: timestamp '2026-11-25T13:30:30+01:00' is not UTC (Z or +00:00)"
    ]


def test_events_stamped_beyond_the_future_skew_are_not_counted():
    live = one_partition(future_skew_s=60)
    ahead = arrived(row("page_view", NOW + timedelta(minutes=3)), NOW)
    slightly = arrived(row("page_view", NOW + timedelta(seconds=20)), NOW)
    result = live.add_records(0, [(0, encode([ahead, slightly]))], NOW)
    assert result.too_early == [-180.0] and result.counted == 1


def detect(live: LiveState, detector: ProjectDetector, at: float) -> list:
    alerts = []
    for bucket in live.close_buckets(at):
        alerts += detector.add(bucket, THRESHOLDS)
    return alerts


def steady_then(late_errors: bool) -> list:
    """Live traffic (10 events a second, 1% errors) and, after 30 buckets, 200 error events at once: an hour
    late, or happening now."""
    live = one_partition()
    detector = ProjectDetector("p1")
    alerts = []
    for second in range(170):
        moment = NOW + timedelta(seconds=second)
        batch = [row("error" if (second * 10 + n) % 100 == 0 else "page_view", moment) for n in range(10)]
        if second == 150:
            happened = moment - timedelta(hours=1) if late_errors else moment
            batch += [arrived(row("error", happened), moment) for _ in range(200)]
        assert live.add_records(0, [(second, encode(batch))], moment).counted == len(batch)
        alerts += detect(live, detector, moment.timestamp() + 0.6)
    return alerts


def test_errors_that_happened_an_hour_ago_fire_no_alert_but_the_same_errors_now_do():
    assert [a.metric for a in steady_then(late_errors=True)] == []
    assert "error_rate" in [a.metric for a in steady_then(late_errors=False)]


def test_a_backlog_is_judged_by_event_time_not_by_when_it_is_read():
    """A worker that stalled for a minute reads the backlog in one go: each event still lands in its
    detection bucket, because buckets close by the newest event time, not by the wall clock."""
    start = NOW.timestamp()
    live = one_partition()
    wall = NOW + timedelta(seconds=61)
    summaries, late = [], 0
    for second in range(60):
        moment = NOW + timedelta(seconds=second)
        batch = [arrived(row("page_view", moment), moment) for _ in range(second % 7 + 1)]
        late += len(live.add_records(0, [(second, encode(batch))], wall).late)
        summaries += live.close_buckets(wall.timestamp())
    summaries += live.close_buckets(wall.timestamp() + 1.0)  # idle: the wall clock closes the rest

    expected = Counter(int(s // 5) * 5 for s in range(60) for _ in range(s % 7 + 1))
    assert late == 0
    assert {s["bucket_start"] - start: s["window"]["events"] for s in summaries} == {
        float(k): v for k, v in expected.items()
    }


def endpoint_traffic(live: LiveState, moment: datetime, offset: int, requests: int) -> None:
    batch = [api(moment, endpoint="/pay") for _ in range(requests)]
    batch += [row("page_view", moment) for _ in range(requests)]
    live.add_records(0, [(offset, encode(batch))], moment)


def test_silence_fires_traffic_drop_for_the_project_and_its_steady_endpoint_and_resolves():
    """Warm a project at 10 requests + 10 page views a second, stop all traffic: the empty buckets are
    observations of zero, so `traffic_drop` fires for the project and for `/pay`; traffic back: resolved."""
    live = one_partition()
    detector = ProjectDetector("p1")
    alerts: list = []
    timeline = [("traffic", s) for s in range(150)] + [("silent", s) for s in range(150, 200)]
    timeline += [("traffic", s) for s in range(200, 240)]
    stopped_at = NOW.timestamp() + 150
    fired_at = {}
    for phase, second in timeline:
        moment = NOW + timedelta(seconds=second)
        if phase == "traffic":
            endpoint_traffic(live, moment, second, 10)
        for alert in detect(live, detector, moment.timestamp() + 0.6):
            alerts.append(alert)
            fired_at.setdefault((alert.metric, tuple(alert.labels.items())), moment.timestamp())

    drops = [(a.status, a.labels) for a in alerts if a.metric == "traffic_drop"]
    assert sorted(drops, key=str) == sorted(
        [
            (AlertStatus.FIRING, {}),
            (AlertStatus.FIRING, {"endpoint": "/pay"}),
            (AlertStatus.RESOLVED, {}),
            (AlertStatus.RESOLVED, {"endpoint": "/pay"}),
        ],
        key=str,
    )
    # Detection latency: the first empty bucket closes one interval and the allowed lateness after the stop.
    assert fired_at[("traffic_drop", ())] - stopped_at <= 5.0 + 0.5 + 1.0
    assert [a.metric for a in alerts if a.status == AlertStatus.FIRING] == ["traffic_drop", "traffic_drop"]


def test_an_endpoint_with_sparse_traffic_never_pages_when_it_goes_quiet():
    live = one_partition()
    detector = ProjectDetector("p1")
    alerts = []
    for second in range(200):
        moment = NOW + timedelta(seconds=second)
        batch = [row("page_view", moment) for _ in range(10)]
        if second < 150 and second % 5 == 0:
            batch.append(api(moment, endpoint="/rare"))
        live.add_records(0, [(second, encode(batch))], moment)
        alerts += detect(live, detector, moment.timestamp() + 0.6)
    assert alerts == []


def test_retries_across_a_restart_are_counted_once_whatever_was_persisted():
    rng = random.Random(8)
    events = [arrived(row("page_view", NOW - timedelta(seconds=90 - i)), NOW) for i in range(90)]
    events += [events[i] for i in rng.sample(range(90), 20)]
    records = [(offset, encode([e])) for offset, e in enumerate(events)]
    unique = len({e["event_id"] for e in events})

    for cut in range(0, 12):
        first, table = one_partition(), Table()
        first.add_records(0, records[:40], NOW)
        table.apply(first.drain_writes(0, NOW))
        first.add_records(0, records[40:80], NOW)
        table.apply(first.drain_writes(0, NOW)[:cut])  # killed mid-persist (cut 11+: all of it)
        second = LiveState(1, 24 * 60, 5.0, 0.5, NOW.timestamp())
        position = second.assign(0, list(table.data.items()))
        second.add_records(0, records[position:], NOW)
        assert summary(second, "p1", "1h", NOW)["events"]["total"] == unique, cut


def test_event_ids_are_bounded_by_the_horizon_and_the_cap():
    ids = EventIds(horizon_s=120.0, max_ids=100)  # slices of 10 s
    t0 = 1_790_000_000.0
    for n in range(250):
        ids.remember(event_digest("p1", f"e{n}"), t0 + n * 0.2)  # 5 ids a second: 50 per slice
    evicted = ids.enforce_cap()
    assert len(ids.seen) <= 100 and evicted == 250 - len(ids.seen)
    assert event_digest("p1", "e249") in ids.seen and event_digest("p1", "e0") not in ids.seen
    assert event_digest("p2", "e249") not in ids.seen  # keyed by project

    writes = ids.drain_writes(partition=3, position=17, now=t0 + 60)
    assert {key.rsplit("/", 2)[0] for key, _ in writes} == {"3/d"}
    assert sum(len(value) for _, value in writes) == 8 * len(ids.seen)
    later = ids.drain_writes(partition=3, position=18, now=t0 + 50 + 120 + 10 + 10.1)
    assert ids.seen == set() and later == [(key, None) for key, _ in writes]


@pytest.mark.parametrize("cursor", [16, 17])
def test_id_chunks_written_after_the_cursor_are_dropped_on_restore(cursor):
    source = EventIds(horizon_s=120.0)
    source.remember(event_digest("p1", "a"), 1_790_000_000.0)
    (key, value), *_ = source.drain_writes(partition=0, position=17, now=1_790_000_000.0)
    restored = EventIds(horizon_s=120.0)
    restored.restore(key, value, cursor)
    assert (event_digest("p1", "a") in restored.seen) == (cursor >= 17)
    tombstones = [k for k, v in restored.drain_writes(0, 18, 1_790_000_000.0) if v is None]
    assert tombstones == ([] if cursor >= 17 else [key])
