"""The retry matrix, backoff and Retry-After, and batch delivery driven without any I/O."""

import gzip
import json
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pravis_sdk.delivery import GIVE_UP, Reply, Send, Sleep, deliver, encode_body
from pravis_sdk.policy import MAX_RETRY_AFTER_S, RetryPolicy, Verdict, classify, parse_retry_after

ITEMS = [json.dumps({"event_id": str(i)}).encode() for i in range(4)]
POLICY = RetryPolicy(max_retries=3)


def run(items, replies, policy=POLICY, give_up_after=None):
    """Drive `deliver` with scripted replies; return (outcome, sends, sleeps)."""
    steps = deliver(items, policy, random.Random(7))
    sends, sleeps = [], []
    replies = list(replies)
    step = next(steps)
    try:
        while True:
            if isinstance(step, Send):
                sends.append(list(step.items))
                step = steps.send(replies.pop(0) if replies else Reply(200, b'{"status":"ok"}'))
            else:
                assert isinstance(step, Sleep)
                sleeps.append(step.seconds)
                step = steps.send(
                    GIVE_UP if give_up_after is not None and len(sleeps) > give_up_after else None
                )
    except StopIteration as done:
        return done.value, sends, sleeps


# status, verdict, requests made when the first answer has that status (and the next one is 200)
MATRIX = [
    (200, Verdict.ACCEPTED, 1),
    (202, Verdict.ACCEPTED, 1),
    (None, Verdict.RETRY, 2),
    (408, Verdict.RETRY, 2),
    (429, Verdict.RETRY, 2),
    (500, Verdict.RETRY, 2),
    (502, Verdict.RETRY, 2),
    (503, Verdict.RETRY, 2),
    (504, Verdict.RETRY, 2),
    (599, Verdict.RETRY, 2),
    (301, Verdict.DROP, 1),
    (400, Verdict.DROP, 1),
    (401, Verdict.DROP, 1),
    (403, Verdict.DROP, 1),
    (404, Verdict.DROP, 1),
    (409, Verdict.DROP, 1),
    (415, Verdict.DROP, 1),
    (422, Verdict.DROP, 1),
    (413, Verdict.SPLIT, 3),
]


@pytest.mark.parametrize(("status", "verdict", "requests"), MATRIX)
def test_retry_matrix(status, verdict, requests) -> None:
    assert classify(status) is verdict

    outcome, sends, sleeps = run(ITEMS, [Reply(status, b"{}", error="refused")])

    assert len(sends) == requests
    if verdict is Verdict.DROP:
        assert outcome.accepted == 0 and [code for _, code, _ in outcome.dropped] == [f"http_{status}"] * 4
    else:
        assert outcome.accepted == 4 and not outcome.dropped
    assert len(sleeps) == (1 if verdict is Verdict.RETRY else 0)


def test_retries_resend_the_same_events_then_give_up_and_report() -> None:
    outcome, sends, sleeps = run(ITEMS, [Reply(503, b"{}")] * 10)

    assert sends == [ITEMS] * 4  # first try + max_retries
    assert len(sleeps) == 3
    assert outcome.accepted == 0
    assert {code for _, code, _ in outcome.dropped} == {"retries_exhausted"}
    assert "HTTP 503" in outcome.dropped[0][2]


def test_shutdown_during_a_retry_wait_reports_the_batch_as_dropped() -> None:
    outcome, sends, _ = run(ITEMS, [Reply(503, b"{}")] * 10, give_up_after=0)

    assert len(sends) == 1
    assert {code for _, code, _ in outcome.dropped} == {"shutdown"}


def test_retry_after_is_a_floor_for_the_wait() -> None:
    _, _, sleeps = run(ITEMS, [Reply(429, b"{}", retry_after="7"), Reply(503, b"{}", retry_after="2")])

    assert 7 <= sleeps[0] <= 7 * 1.1
    assert 2 <= sleeps[1] <= 2 * 1.1


def test_partial_answer_reports_rejected_events_and_does_not_retry_them() -> None:
    body = json.dumps(
        {
            "status": "partial",
            "processed": 2,
            "rejected": [{"index": 1, "error": "rating: bad"}, {"index": 3, "error": "x"}],
        }
    ).encode()

    outcome, sends, _ = run(ITEMS, [Reply(200, body)])

    assert len(sends) == 1
    assert outcome.accepted == 2
    assert outcome.rejected == [(ITEMS[1], "rating: bad"), (ITEMS[3], "x")]


def test_all_rejected_400_reports_each_event_as_rejected() -> None:
    body = json.dumps(
        {"status": "error", "processed": 0, "rejected": [{"index": i, "error": "e"} for i in range(4)]}
    )

    outcome, sends, _ = run(ITEMS, [Reply(400, body.encode())])

    assert len(sends) == 1 and len(outcome.rejected) == 4 and not outcome.dropped


def test_413_splits_until_the_halves_fit_and_drops_a_single_oversize_event() -> None:
    replies = [Reply(413, b"{}"), Reply(413, b"{}"), Reply(200, b"{}"), Reply(413, b"{}"), Reply(200, b"{}")]

    outcome, sends, _ = run(ITEMS, replies)

    assert sends == [ITEMS, ITEMS[:2], [ITEMS[0]], [ITEMS[1]], ITEMS[2:]]
    assert outcome.accepted == 3
    assert [(item, code) for item, code, _ in outcome.dropped] == [(ITEMS[1], "http_413")]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("5", 5.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("86400", MAX_RETRY_AFTER_S),
        ("soon", None),
        ("nan", None),
    ],
)
def test_parse_retry_after_seconds(header, seconds) -> None:
    assert parse_retry_after(header) == seconds


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)

    assert parse_retry_after(header, now) == 30.0


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=30.0)
    rng = random.Random(1)
    for attempt in range(10):
        step = min(30.0, 2**attempt)
        delays = [policy.backoff(attempt, rng) for _ in range(200)]
        assert all(step / 2 <= d <= step for d in delays)
        assert max(delays) - min(delays) > step / 4  # jittered, not constant


def test_body_carries_a_fresh_sent_at_and_can_be_gzipped() -> None:
    sent_at = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)

    plain = encode_body(ITEMS[:2], sent_at)
    zipped = encode_body(ITEMS[:2], sent_at, compress=True)

    assert json.loads(plain) == {
        "events": [{"event_id": "0"}, {"event_id": "1"}],
        "sent_at": "2026-05-01T08:00:00.000+00:00",
    }
    assert gzip.decompress(zipped) == plain
