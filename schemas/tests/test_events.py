import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest
from pravis_schemas import (
    EVENT_MODELS,
    ConsentCategory,
    CustomEvent,
    EnrichedEvent,
    EventBatch,
    FeedbackEvent,
    PageViewEvent,
    RejectedEvent,
    VoiceRequestEvent,
    describe_error,
    parse_event,
    topics,
    validate_batch,
)
from pravis_schemas.events import MAX_PROPERTY_DEPTH, RAW_MAX_BYTES
from pravis_schemas.export import export_schemas, main
from pravis_schemas.messages import consent_category
from pydantic import ValidationError

COMMITTED_SCHEMAS = Path(__file__).parents[1] / "json"


def envelope(event_type: str, **fields) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "timestamp": "2024-05-01T10:00:00.250+02:00",
        "anonymous_id": "anon-1",
        **fields,
    }


AI = {"interaction_id": "ia-1", "request_duration_ms": 812.5, "success": True}

VALID = {
    "page_view": {"page_title": "Home", "user_agent": "Mozilla/5.0", "ip": "203.0.113.7"},
    "button_click": {"button_id": "buy"},
    "feature_use": {"feature_name": "search"},
    "error": {"error_type": "TypeError", "error_message": "x is undefined", "stack": "at f()"},
    "voice_request": {**AI, "intent": "  Play   Music ", "model_used": "whisper-1"},
    "transcription": {**AI, "transcription_corrected": True, "request_size_bytes": 2048},
    "tts": {**AI, "response_size_bytes": 10_000},
    "conversation": {**AI, "completed": True, "follow_up": False, "turn_count": 3},
    "api_request": {"endpoint": "/users/{id}", "method": "get", "status": 200, "duration_ms": 12.5},
    "feedback": {"interaction_id": "ia-1", "rating": 5, "comment": "great", "context": "voice"},
    "experiment_exposure": {"experiment_key": "new-onboarding", "variant": "b"},
    "consent_change": {"consent": {"analytics": True, "personalization": False}, "source": "banner"},
    "identify": {"user_id": "u-9", "properties": {"plan": "pro"}},
    "alias": {"user_id": "u-11", "previous_id": "u-9"},
    "product_viewed": {"product_id": "p-1", "price": 19.99, "currency": "EUR"},
    "product_added": {"sku": "SHOE-38", "quantity": 2, "price": "19.99", "currency": "eur"},
    "checkout_started": {"order_id": "o-1", "items": [{"sku": "SHOE-38", "price": 19.99}], "currency": "EUR"},
    "order_completed": {
        "order_id": "o-1",
        "revenue": 37.98,
        "currency": "EUR",
        "items": [{"sku": "SHOE-38", "product_id": "p-1", "quantity": 2, "price": 19.99}],
        "coupon": "SPRING",
        "discount": 2,
        "tax": "7.22",
        "shipping": 0,
    },
    "order_refunded": {"order_id": "o-1", "revenue": "19.99", "currency": "EUR"},
    "resource_sample": {
        "host": "web-1",
        "service": "shop-api",
        "pid": 4242,
        "cpu_percent": 37.5,
        "rss_bytes": 104_857_600,
        "open_fds": 31,
        "threads": 4,
        "loop_lag_ms": 1.25,
        "in_flight": 3,
    },
    "survey_shown": {"survey_id": "ux-q3", "survey_version": 2},
    "survey_dismissed": {"survey_id": "ux-q3", "survey_version": 2},
    "survey_answered": {
        "survey_id": "ux-q3",
        "survey_version": 2,
        "survey_answers": [{"question_id": "nps", "value": 9}, {"question_id": "why", "text": "fast"}],
    },
    "feature_request": {"feature_request_title": "Dark mode", "feature_request_description": "at night"},
    "feature_request_vote": {"feature_request_title": "dark  mode"},
}


def test_every_known_type_has_a_valid_example():
    assert set(VALID) == set(EVENT_MODELS)


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_known_type_valid(event_type):
    event = parse_event(envelope(event_type, **VALID[event_type]))
    assert type(event) is EVENT_MODELS[event_type]
    assert event.timestamp == datetime(2024, 5, 1, 8, 0, 0, 250_000, tzinfo=UTC)


def test_parse_event_accepts_json_text():
    assert isinstance(parse_event(orjson.dumps(envelope("feedback", rating=3))), FeedbackEvent)


def test_field_normalisation():
    voice = parse_event(envelope("voice_request", **VALID["voice_request"]))
    assert isinstance(voice, VoiceRequestEvent)
    assert voice.intent == "play music"
    assert parse_event(envelope("voice_request", **AI, intent=" \t ")).intent is None
    assert parse_event(envelope("api_request", **VALID["api_request"])).method == "GET"
    consent = parse_event(envelope("consent_change", **VALID["consent_change"]))
    assert consent.consent == {ConsentCategory.ANALYTICS: True, ConsentCategory.PERSONALIZATION: False}


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (envelope("feedback", rating=3, timestamp="2024-05-01T10:00:00"), "timestamp: Input should have"),
        (envelope("feedback", rating=0), "rating: Input should be greater than or equal to 1"),
        (envelope("feedback", rating=6), "rating: Input should be less than or equal to 5"),
        (envelope("feedback"), "rating: Field required"),
        (envelope("button_click"), "button_id: Field required"),
        (envelope("voice_request", **{**AI, "request_duration_ms": -1}), "request_duration_ms: Input"),
        (envelope("voice_request", **{**AI, "request_duration_ms": 4e6}), "request_duration_ms: Input"),
        (envelope("api_request", **{**VALID["api_request"], "status": 700}), "status: Input should be"),
        (envelope("api_request", **{**VALID["api_request"], "method": "FETCH"}), "method: Input should be"),
        (envelope("consent_change", consent={}), "consent: Dictionary should have at least 1 item"),
        (envelope("consent_change", consent={"marketing": True}), "consent.marketing.[key]: Input should be"),
        (envelope("page_view", ip="999.0.0.1"), "ip: value is not a valid IPv4 or IPv6 address"),
        (envelope("page_view", timestamp="0001-01-01T00:00:00Z"), "timestamp: Datetime year should be"),
        (envelope("page_view", anonymous_id=None), "user_id or anonymous_id is required"),
        (envelope("signup", anonymous_id=None, user_id=None), "user_id or anonymous_id is required"),
        (envelope("page_view", user_id=""), "user_id: String should have at least 1 character"),
        (envelope("page_view", unknown_field=1), "unknown_field: Extra inputs are not permitted"),
        (envelope("signup", page_title="Home"), "page_title: Extra inputs are not permitted"),
        (envelope("sign up"), "event_type: String should match pattern"),
        (envelope("x" * 65), "event_type: String should have at most 64 characters"),
        ({"event_type": "page_view"}, "event_id: Field required"),
        ({**envelope("page_view"), "event_id": "not-a-uuid"}, "event_id: Input should be a valid UUID"),
        (["not", "an", "object"], "Event should be a JSON object with an event_type"),
        (envelope("identify"), "user_id: Field required"),
        (envelope("alias", user_id="u-1"), "previous_id: Field required"),
        (envelope("alias", previous_id="anon-1"), "user_id: Field required"),
        (envelope("alias", user_id="u-1", previous_id="u-1"), "previous_id should differ from user_id"),
    ],
)
def test_invalid_event(event, expected):
    with pytest.raises(ValidationError) as exc:
        parse_event(event)
    assert describe_error(exc.value).startswith(expected)


def test_identify_and_alias_rows_carry_both_ids_and_are_analytics():
    identify = parse_event(envelope("identify", **VALID["identify"]))
    assert (identify.partition_key, identify.anonymous_id) == ("u-9", "anon-1")
    received = datetime(2024, 5, 1, 9, tzinfo=UTC)
    alias = parse_event(envelope("alias", **VALID["alias"]))
    row = orjson.loads(EnrichedEvent(event=alias, project_id="p", received_at=received).to_json())
    assert (row["user_id"], row["previous_id"], row["anonymous_id"]) == ("u-11", "u-9", "anon-1")
    assert "forced" not in row
    assert consent_category("identify") == consent_category("alias") == ConsentCategory.ANALYTICS


def test_unknown_type_is_custom():
    event = parse_event(envelope("signup_completed", properties={"plan": "pro"}, user_id="u-1"))
    assert isinstance(event, CustomEvent)
    assert event.event_type == "signup_completed"
    assert event.properties == {"plan": "pro"}
    assert event.partition_key == "u-1"


def test_known_type_never_falls_back_to_custom():
    with pytest.raises(ValidationError) as exc:
        parse_event(envelope("feedback", rating=9))
    assert describe_error(exc.value) == "rating: Input should be less than or equal to 5"
    with pytest.raises(ValidationError, match="is a known event type"):
        CustomEvent.model_validate(envelope("feedback"))


def nested(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for level in range(depth - 1):
        value = {f"l{level}": value}
    return value


@pytest.mark.parametrize(
    ("properties", "error"),
    [
        ({f"k{i}": i for i in range(201)}, "at most 200 keys"),
        ({"k" * 201: 1}, "at most 200 characters"),
        ({"big": "x" * 8193}, "Property big should have at most 8192 characters"),
        ({"list": ["ok", "x" * 8193]}, "Property list.1 should have at most 8192 characters"),
        ({"a": nested(MAX_PROPERTY_DEPTH + 1)}, "Properties should nest at most 5 levels"),
        ({"a": [[[[[[1]]]]]]}, "Properties should nest at most 5 levels"),
        ({"when": datetime.now(UTC)}, "Property when should be a JSON value"),
        ({"n": 2**64}, "Property n should be an integer that fits in 64 bits"),
        ({"n": [-(2**63) - 1]}, "Property n.0 should be an integer that fits in 64 bits"),
        ({"n": float("nan")}, "Property n should be a finite number"),
        ({"n": {"m": float("-inf")}}, "Property n.m should be a finite number"),
    ],
)
def test_properties_bounds(properties, error):
    with pytest.raises(ValidationError) as exc:
        parse_event(envelope("signup", properties=properties))
    message = describe_error(exc.value)
    assert message.startswith("properties: ")
    assert error in message


def test_properties_at_the_bounds_accepted():
    properties = {
        **{f"k{i}": None for i in range(195)},
        "deep": nested(MAX_PROPERTY_DEPTH),
        "k" * 200: "x" * 8192,
        "int64": -(2**63),
        "uint64": 2**64 - 1,
        "nul": "a\u0000b",
    }
    assert parse_event(envelope("signup", properties=properties)).properties == properties


@pytest.mark.parametrize("as_json", [False, True])
def test_batch_mixed_good_and_bad(as_json):
    events = [
        envelope("page_view"),
        envelope("feedback", rating=6),
        envelope("signup"),
        42,
        envelope("button_click", button_id="go", extra=True),
        envelope("feedback", rating=4),
    ]
    valid, rejected = validate_batch(orjson.dumps(events) if as_json else events)
    assert [event.event_type for event in valid] == ["page_view", "signup", "feedback"]
    assert [(error.index, error.error) for error in rejected] == [
        (1, "rating: Input should be less than or equal to 5"),
        (3, "Event should be a JSON object with an event_type"),
        (4, "extra: Extra inputs are not permitted"),
    ]


def test_batch_all_good_and_empty():
    valid, rejected = validate_batch(orjson.dumps([envelope(t, **f) for t, f in VALID.items()]))
    assert len(valid) == len(VALID)
    assert rejected == []
    assert validate_batch(b"[]") == ([], [])


def test_batch_error_lists_several_problems():
    _, [error] = validate_batch([{"event_type": "feedback", "stars": 5}])
    assert error.error == (
        "event_id: Field required; timestamp: Field required; rating: Field required; (+1 more)"
    )


@pytest.mark.parametrize("body", [b'{"events": []}', b"not json", b"[1, 2"])
def test_batch_that_is_not_an_array_raises(body):
    with pytest.raises(ValidationError):
        validate_batch(body)


def test_event_batch_body():
    body = orjson.dumps({"events": [envelope("page_view"), "junk"], "sent_at": "2024-05-01T08:00:01+00:00"})
    batch = EventBatch.model_validate_json(body)
    assert batch.sent_at == datetime(2024, 5, 1, 8, 0, 1, tzinfo=UTC)
    valid, rejected = validate_batch(batch.events)
    assert len(valid) == 1
    assert rejected[0].index == 1


def test_event_batch_size_bound_is_configurable():
    body = orjson.dumps({"events": [envelope("page_view")] * 3})
    assert len(EventBatch.model_validate_json(body).events) == 3
    with pytest.raises(ValidationError, match="at most 2 events"):
        EventBatch.model_validate_json(body, context={"max_events": 2})
    with pytest.raises(ValidationError, match="at most 500 events"):
        EventBatch.model_validate({"events": [{}] * 501})


def test_enriched_event_flat_row_round_trip():
    event = parse_event(envelope("page_view", **VALID["page_view"], properties={"a": None, "b": [1, 2]}))
    received_at = datetime(2024, 5, 1, 8, 0, 2, 500_000, tzinfo=UTC)
    enriched = EnrichedEvent(
        event=event,
        project_id="p1",
        received_at=received_at,
        sent_at=datetime(2024, 5, 1, 10, 0, 1, tzinfo=timezone(timedelta(hours=2))),
        ip="203.0.113.0",
        browser="Firefox",
        os="Linux",
    )
    row = orjson.loads(enriched.to_json())
    assert row == {
        "event_id": str(event.event_id),
        "event_type": "page_view",
        "timestamp": "2024-05-01T08:00:00.250000Z",
        "anonymous_id": "anon-1",
        "properties": {"a": None, "b": [1, 2]},
        "page_title": "Home",
        "project_id": "p1",
        "received_at": "2024-05-01T08:00:02.500000Z",
        "sent_at": "2024-05-01T08:00:01Z",
        "ip": "203.0.113.0",
        "browser": "Firefox",
        "os": "Linux",
    }
    assert datetime.fromisoformat(row["timestamp"]) == event.timestamp
    back = EnrichedEvent.from_json(enriched.to_json())
    assert back.event == event.model_copy(update={"user_agent": None, "ip": None})
    assert back.model_dump(exclude={"event"}) == enriched.model_dump(exclude={"event"})


@pytest.mark.parametrize("event_type", sorted(VALID))
def test_flat_row_keys_are_model_fields(event_type):
    event = parse_event(envelope(event_type, **VALID[event_type]))
    row = orjson.loads(EnrichedEvent(event=event, project_id="p", received_at=datetime.now(UTC)).to_json())
    assert "user_agent" not in row
    assert set(row) <= set(type(event).model_fields) | set(EnrichedEvent.model_fields) - {"event"}
    assert EnrichedEvent.from_json(orjson.dumps(row)).event.event_id == event.event_id


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"event_type": "x", "rating": 9}, '{"event_type":"x","rating":9}'),
        ({"title": "cut \ud83d"}, '{"title": "cut \\ud83d"}'),
        (b'{"a": 1}', '{"a": 1}'),
        ("é" * RAW_MAX_BYTES, "é" * (RAW_MAX_BYTES // 2)),
    ],
)
def test_rejected_event_raw(raw, expected):
    message = RejectedEvent(project_id="p", received_at=datetime.now(UTC), index=1, error="e", raw=raw)
    assert message.raw == expected
    assert len(message.raw.encode()) <= RAW_MAX_BYTES
    assert orjson.loads(message.to_json())["index"] == 1


def test_topics():
    assert topics.ALL_TOPICS == (
        "events",
        "events.rejected",
        "consent",
        "privacy.requests",
        "alerts",
        "feedback.scored",
        "alerts.silences",
        "survey_answers.scored",
    )


def test_json_schema_export(tmp_path, capsys):
    main([str(tmp_path)])
    names = {path.name for path in tmp_path.iterdir()}
    assert names == {f"{name}.schema.json" for name in [*EVENT_MODELS, "custom", "batch"]}
    for path in tmp_path.iterdir():
        document = json.loads(path.read_text())
        assert document["$schema"].startswith("https://json-schema.org/")
    assert str(tmp_path / "batch.schema.json") in capsys.readouterr().out
    feedback = json.loads((tmp_path / "feedback.schema.json").read_text())
    assert feedback["properties"]["rating"]["maximum"] == 5
    assert "rating" in feedback["required"]


def test_committed_schemas_are_current(tmp_path):
    export_schemas(tmp_path)
    committed = {path.name: path.read_text() for path in COMMITTED_SCHEMAS.glob("*.schema.json")}
    fresh = {path.name: path.read_text() for path in tmp_path.glob("*.schema.json")}
    assert committed == fresh, "run `uv run pravis-schemas-export` and commit schemas/json"


def test_models_accept_their_own_dump():
    event = parse_event(envelope("page_view", **VALID["page_view"]))
    assert PageViewEvent.model_validate_json(event.model_dump_json()) == event


ORDER = {"order_id": "o-1", "revenue": "10", "currency": "EUR"}


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({**ORDER, "revenue": -0.01}, "revenue: Input should be greater than or equal to 0"),
        ({**ORDER, "revenue": 0.12345}, "revenue: Decimal input should have no more than 4 decimal places"),
        ({**ORDER, "revenue": 1e11}, "revenue: Decimal input should have no more than 11 digits before"),
        (
            {**ORDER, "revenue": "12345678901.23456"},
            "revenue: Decimal input should have no more than 15 digits",
        ),
        ({**ORDER, "revenue": "ten"}, "revenue: Input should be a valid decimal"),
        ({**ORDER, "currency": "EURO"}, "currency: EURO is not an ISO 4217 currency code"),
        ({**ORDER, "currency": "XYZ"}, "currency: XYZ is not an ISO 4217 currency code"),
        ({"order_id": "o-1", "revenue": 1}, "currency: Field required"),
        ({**ORDER, "items": [{"sku": "a", "price": 1, "quantity": 0}]}, "items.0.quantity: Input should be"),
        ({**ORDER, "items": [{"price": 1}]}, "items.0.sku: Field required"),
        ({**ORDER, "tax": -1}, "tax: Input should be greater than or equal to 0"),
    ],
)
def test_order_money_is_refused_with_its_reason(fields, reason):
    _, rejected = validate_batch([envelope("order_completed", **fields)])
    assert len(rejected) == 1 and rejected[0].error.startswith(reason), rejected


@pytest.mark.parametrize(
    ("event_type", "fields", "reason"),
    [
        ("product_viewed", {"price": 3}, "price needs a currency"),
        ("product_viewed", {"currency": "EUR"}, "product_id or sku is required"),
        ("checkout_started", {"items": [{"sku": "a", "price": 1}]}, "items need a currency"),
        ("checkout_started", {"discount": 1}, "discount needs a currency"),
        ("order_refunded", {"order_id": "o-1", "currency": "EUR"}, "revenue: Field required"),
    ],
)
def test_commerce_events_need_a_currency_and_a_product(event_type, fields, reason):
    _, rejected = validate_batch([envelope(event_type, **fields)])
    assert [r.error for r in rejected] == [reason]


@pytest.mark.parametrize("quote", [b"", b'"'])
@pytest.mark.parametrize("text", ["0.1", "19.99", "99999999999.9999", "12345678901.2345", "0.0001", "100"])
def test_amounts_reach_the_row_exactly(text, quote):
    """An amount within the bound reaches the row with the digits sent, as a JSON number (which parsers hold
    as a double) or a string; the row carries it as a decimal string (ClickHouse parses it into
    Decimal(18, 4) exactly)."""
    raw = b'{"event_type": "order_completed", "event_id": "%s", "timestamp": "2024-05-01T10:00:00Z", ' % (
        str(uuid.uuid4()).encode()
    )
    raw += (
        b'"user_id": "u", "order_id": "o", "currency": "usd", "revenue": '
        + quote
        + text.encode()
        + quote
        + b"}"
    )
    event = parse_event(raw)
    row = orjson.loads(EnrichedEvent(event=event, project_id="p", received_at=datetime.now(UTC)).to_json())

    assert row["currency"] == "USD"
    assert row["revenue"] == text
