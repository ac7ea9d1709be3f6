"""Whole-project answers from N workers: the parts each worker holds, sent as JSON and merged, give the body
one worker holding every partition gives; a worker that did not answer leaves its partitions out."""

import random
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pravis_stream.live_parts import MinuteParts, SummaryParts, parse_minute, parse_partitions, plan_requests
from pravis_stream.partition_state import LiveState
from pravis_stream.views import (
    summary,
    summary_body,
    summary_starts,
    timeseries,
    timeseries_body,
    timeseries_keys,
)

from .events import ai, api, encode, row

NOW = datetime(2026, 11, 25, 12, 30, 30, tzinfo=UTC)
PARTITIONS = 6


def records_by_partition() -> dict[int, list[tuple[int, bytes]]]:
    rng = random.Random(4)
    out: dict[int, list[tuple[int, bytes]]] = {p: [] for p in range(PARTITIONS)}
    for n in range(600):
        moment = NOW - timedelta(seconds=rng.uniform(0, 3 * 3600))
        user = f"u{rng.randrange(150)}"
        kind = n % 4
        event = (
            row("page_view", moment, user=user)
            if kind == 0
            else api(moment, status=rng.choice([200, 200, 503]), ms=rng.uniform(5, 90), user=user)
            if kind == 1
            else ai(moment, success=rng.random() < 0.9, ms=rng.uniform(100, 900), user=user)
            if kind == 2
            else row("error", moment, user=user, error_type="E")
        )
        records = out[hash(user) % PARTITIONS]
        records.append((len(records), encode([event])))
    return out


def worker(partitions: list[int], records: dict[int, list[tuple[int, bytes]]]) -> LiveState:
    live = LiveState(PARTITIONS, 24 * 60, 5.0, 0.5, NOW.timestamp())
    for p in partitions:
        live.assign(p, [])
        live.add_records(p, records[p], NOW)
    return live


def over_the_wire(parts):
    return type(parts).from_json(orjson.loads(orjson.dumps(parts.to_json())))


@pytest.mark.parametrize("split", [[[0, 1, 2], [3, 4, 5]], [[0, 3], [1, 4], [2, 5]]])
@pytest.mark.parametrize("window", ["5m", "1h", "24h", "today"])
def test_merged_parts_answer_like_one_worker(split, window):
    records = records_by_partition()
    alone = worker(list(range(PARTITIONS)), records)
    workers = [worker(partitions, records) for partitions in split]

    window_start, user_starts = summary_starts(window, NOW)
    answering, *others = workers
    merged = answering.summary_parts("p1", window_start, user_starts, answering.owned())
    for other in others:
        merged.merge(over_the_wire(other.summary_parts("p1", window_start, user_starts, other.owned())))
    assert summary_body(merged, PARTITIONS, "p1", window, NOW) == summary(alone, "p1", window, NOW)

    since = timeseries_keys(200, NOW)[0]
    minutes = answering.minute_parts("p1", since, answering.owned())
    for other in others:
        minutes.merge(over_the_wire(other.minute_parts("p1", since, other.owned())))
    assert timeseries_body(minutes, "p1", 200, NOW) == timeseries(alone, "p1", 200, NOW)


def test_a_worker_that_did_not_answer_leaves_its_partitions_out():
    records = records_by_partition()
    answering = worker([0, 1], records)
    window_start, user_starts = summary_starts("today", NOW)
    parts = answering.summary_parts("p1", window_start, user_starts, answering.owned())
    parts.merge(over_the_wire(worker([2, 3], records).summary_parts("p1", window_start, user_starts, {2, 3})))

    body = summary_body(parts, PARTITIONS, "p1", "today", NOW)

    assert (body["partitions"], body["total_partitions"]) == ([0, 1, 2, 3], PARTITIONS)
    expected = sum(
        1
        for p in (0, 1, 2, 3)
        for _, value in records[p]
        if orjson.loads(value)["timestamp"][:10] == NOW.strftime("%Y-%m-%d")
    )
    assert body["events"]["total"] == expected


def test_a_worker_answers_only_for_the_partitions_it_holds():
    live = worker([0, 1], records_by_partition())
    assert live.owned({1, 2, 5}) == {1}
    parts = live.minute_parts("p1", "2026-11-25T00:00", live.owned({1, 2}))
    assert parts.partitions == {1}
    assert MinuteParts.from_json(parts.to_json()).partitions == {1}
    assert SummaryParts().partitions == set()


def test_each_partition_is_asked_of_one_owner_and_never_of_this_worker():
    owners = {
        "http://a:1": {0, 1},
        "http://b:2/": {2, 3},
        "http://c:3": {3, 4},  # a stale assignment also naming 3
    }
    plan = plan_requests(owners, "http://b:2", wanted={0, 2, 3, 4, 5})
    assert plan == {"http://a:1": {0}, "http://c:3": {3, 4}}


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "within"), ("1,x", "comma-separated"), ("6", "within"), ("-1", "within")],
)
def test_bad_partitions_are_refused_with_a_reason(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_partitions(text, PARTITIONS)


@pytest.mark.parametrize("text", [None, "2026-11-25", "2026-13-25T10:00", "2026-11-25T10:00:00"])
def test_bad_minutes_are_refused_with_a_reason(text):
    with pytest.raises(ValueError, match="since must be a minute"):
        parse_minute(text, "since")
