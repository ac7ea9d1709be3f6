import json
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pravis_gateway.consent import ConsentBook
from pravis_gateway.enrich import IpAnonymizer
from pravis_gateway.ingest import Limits, Policies, Request, parse_batch, process_batch
from pravis_gateway.scrub import Scrubber
from pravis_schemas import rows_of_record
from pydantic import ValidationError

RECEIVED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_event_bytes=2048, max_event_age=timedelta(days=30), max_future_skew=timedelta(minutes=5))


def event(**fields) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "page_view",
        "timestamp": RECEIVED.isoformat(),
        "anonymous_id": "anon-1",
        **fields,
    }


def run(
    events: list[dict],
    sent_at: datetime | None = None,
    book: ConsentBook | None = None,
    forced_alias: bool = False,
):
    request = Request(
        project_id="shop",
        received_at=RECEIVED,
        sent_at=sent_at,
        client_ip="198.51.100.23",
        forced_alias=forced_alias,
    )
    policies = Policies(
        book if book is not None else ConsentBook(), Scrubber({"password"}), IpAnonymizer("truncate")
    )
    return process_batch(events, request, LIMITS, policies)


def test_each_rejection_keeps_its_original_index_and_reason() -> None:
    events = [
        event(),
        event(properties={"blob": "x" * 4000}),
        event(rating=2),
        event(timestamp=(RECEIVED - timedelta(days=31)).isoformat()),
        event(timestamp=(RECEIVED + timedelta(hours=1)).isoformat()),
        event(),
    ]

    outcome = run(events)

    assert [r.index for r in outcome.rejected] == [1, 2, 3, 4]
    assert dict(outcome.rejected_by_reason) == {"oversize": 1, "invalid": 1, "too_old": 1, "in_future": 1}
    assert "limit is 2048" in outcome.rejected[0].error
    assert "ahead of the server clock" in outcome.rejected[3].error
    assert [orjson.loads(row)["event_id"] for _, v in outcome.records for row in rows_of_record(v)] == [
        events[0]["event_id"],
        events[5]["event_id"],
    ]


def test_rows_are_on_the_server_clock_with_anonymized_network_fields() -> None:
    client_clock_ahead = timedelta(hours=2)
    view = event(
        timestamp=(RECEIVED + client_clock_ahead - timedelta(seconds=10)).isoformat(),
        user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0 Safari/537.36",
    )

    outcome = run([view], sent_at=RECEIVED + client_clock_ahead)

    key, value = outcome.records[0]
    row = orjson.loads(value)
    assert key == b"anon-1"
    assert row["timestamp"].startswith("2026-05-01T11:59:50")
    assert (row["ip"], row["browser"], row["os"], row["project_id"]) == (
        "198.51.100.0",
        "Chrome",
        "Windows",
        "shop",
    )
    assert "user_agent" not in row


def test_server_side_events_carry_no_network_fields() -> None:
    api_call = event(event_type="api_request", endpoint="/p/{id}", method="GET", status=200, duration_ms=3.0)

    row = orjson.loads(run([api_call]).records[0][1])

    assert "ip" not in row and "browser" not in row


def test_one_record_per_key_with_that_keys_events_in_posted_order() -> None:
    events = [
        event(anonymous_id="a"),
        event(user_id="u", anonymous_id="a"),
        event(anonymous_id="a"),
        event(anonymous_id="b"),
    ]

    outcome = run(events)

    by_key = {
        key: [orjson.loads(row)["event_id"] for row in rows_of_record(value)]
        for key, value in outcome.records
    }
    assert by_key == {
        b"a": [events[0]["event_id"], events[2]["event_id"]],
        b"u": [events[1]["event_id"]],
        b"b": [events[3]["event_id"]],
    }
    assert outcome.accepted == 4


def test_identify_and_alias_are_published_under_the_user_id_and_only_the_gateway_forces() -> None:
    identify = event(event_type="identify", user_id="u-9", properties={"plan": "pro"})
    alias = event(event_type="alias", user_id="u-11", previous_id="u-9", anonymous_id=None, forced=True)

    client_rows = {k: [orjson.loads(r) for r in rows_of_record(v)] for k, v in run([identify, alias]).records}
    forced_rows = [orjson.loads(v) for _, v in run([alias], forced_alias=True).records]

    assert [(r["event_type"], r["anonymous_id"]) for r in client_rows[b"u-9"]] == [("identify", "anon-1")]
    assert [(r["previous_id"], r.get("forced")) for r in client_rows[b"u-11"]] == [("u-9", None)]
    assert [(r["previous_id"], r["forced"]) for r in forced_rows] == [("u-9", True)]


def test_consent_withdrawn_in_a_batch_drops_that_users_later_events_only() -> None:
    withdraw = event(event_type="consent_change", consent={"analytics": False}, anonymous_id="a")
    before = event(anonymous_id="a", timestamp=(RECEIVED - timedelta(seconds=5)).isoformat())
    events = [before, withdraw, event(anonymous_id="a"), event(anonymous_id="b")]

    outcome = run(events)

    kept = [orjson.loads(row)["event_id"] for _, v in outcome.records for row in rows_of_record(v)]
    assert kept == [before["event_id"], withdraw["event_id"], events[3]["event_id"]]
    assert outcome.dropped_no_consent == 1
    assert [(r.subject, r.consent) for r in outcome.consent_records] == [("a", {"analytics": False})]


def test_opt_in_projects_keep_only_granted_categories() -> None:
    book = ConsentBook("opt_out", {"shop": "opt_in"})
    grant = event(event_type="consent_change", consent={"performance": True}, user_id="u")
    api_call = event(
        event_type="api_request", user_id="u", endpoint="/p", method="GET", status=200, duration_ms=1.0
    )

    outcome = run([grant, event(user_id="u"), api_call], book=book)

    assert outcome.accepted == 2 and outcome.dropped_no_consent == 1


def test_pii_is_scrubbed_from_properties_and_free_text() -> None:
    view = event(
        page_url="https://boutique.example/?email=jane@example.com",
        properties={"password": "hunter2", "note": "call +44 20 7946 0958"},
    )

    row = orjson.loads(run([view]).records[0][1])

    assert row["page_url"] == "https://boutique.example/?email=[email]"
    assert row["properties"] == {"password": "[redacted]", "note": "call [phone]"}


def batch_text(*events: str) -> bytes:
    """A body whose events are given as JSON text, so values a Python encoder would refuse can be written."""
    return ('{"events": [' + ", ".join(events) + "]}").encode()


def test_what_storage_cannot_hold_is_refused_per_event_and_the_rest_kept() -> None:
    good = json.dumps(event())
    with_properties = json.dumps(event(properties={"n": "VALUE"}))
    body = batch_text(
        good,
        with_properties.replace('"VALUE"', "1180591620717411303424"),
        with_properties.replace('"VALUE"', "NaN"),
        with_properties.replace('"VALUE"', "1e400"),
        with_properties.replace('"VALUE"', '"cut \\ud83d"'),
        with_properties.replace('"VALUE"', '"a\\u0000b"'),
        with_properties.replace('"VALUE"', "18446744073709551615"),
    )

    outcome = run(parse_batch(body, max_events=10).events)

    assert [(r.index, r.error) for r in outcome.rejected] == [
        (1, "an integer does not fit in 64 bits (Int64/UInt64)"),
        (2, "properties: Property n should be a finite number"),
        (3, "properties: Property n should be a finite number"),
        (4, "a string holds a lone UTF-16 surrogate, which is not valid Unicode"),
    ]
    assert dict(outcome.rejected_by_reason) == {"int_out_of_range": 1, "invalid": 2, "lone_surrogate": 1}
    rows = [orjson.loads(row) for _, v in outcome.records for row in rows_of_record(v)]
    assert [row["properties"] for row in rows] == [{}, {"n": "a\x00b"}, {"n": 2**64 - 1}]
    rejected = outcome.rejected_records(parse_batch(body, 10).events, "shop", RECEIVED)
    assert all(orjson.loads(value)["raw"] for _, value in rejected)


def test_duplicate_keys_keep_the_last_value() -> None:
    body = json.dumps(event(properties={"plan": "free"})).replace(
        '"plan": "free"', '"plan": "free", "plan": "pro"'
    )

    outcome = run(parse_batch(batch_text(body), max_events=10).events)

    [row] = [orjson.loads(row) for _, v in outcome.records for row in rows_of_record(v)]
    assert row["properties"] == {"plan": "pro"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"events": [' + b"[" * 5000 + b"]" * 5000 + b"]}", "recursion limit"),
        (b'{"events": [{"t": "\xff"}]}', "invalid unicode"),
        (b'{"events": []} trailing', "trailing characters"),
        (b'{"events": [{"t": "\\ud800"}], "sent_at": "\\ud800"}', "sent_at"),
    ],
)
def test_whole_body_problems_raise(body: bytes, error: str) -> None:
    with pytest.raises(ValidationError) as raised:
        parse_batch(body, max_events=10)

    assert error in str(raised.value)
