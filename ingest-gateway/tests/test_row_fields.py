"""Every field of every event model reaches the published row, whatever types are added later.

The examples are built from each model's JSON Schema with every optional field set, so a new event type or
field is covered without touching this test; a schema this builder cannot satisfy fails the test loudly.
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pravis_gateway.consent import ConsentBook
from pravis_gateway.enrich import IpAnonymizer
from pravis_gateway.ingest import Limits, Policies, Request, process_batch
from pravis_gateway.scrub import Scrubber
from pravis_schemas import EVENT_MODELS, parse_event, rows_of_record
from pravis_schemas.messages import ConsentRecord

RECEIVED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits(max_event_bytes=32 * 1024, max_event_age=timedelta(days=30), max_future_skew=timedelta(0))
ERASURE = "del-1"
# What the gateway writes in place of the client's value, in this test's setting (an erasure before a
# consent change, the forced alias route).
GATEWAY_SET = {"follows_erasure": ERASURE, "forced": True}
# Reduced or anonymised by the gateway into server fields, never written as sent.
NETWORK_FIELDS = {"user_agent", "ip"}
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"


def example(schema: dict, defs: dict, name: str) -> Any:
    """A valid, non-null value for `schema` (a JSON Schema of pydantic's), recognisable by its field name."""
    if "$ref" in schema:
        return example(defs[schema["$ref"].rsplit("/", 1)[1]], defs, name)
    if "anyOf" in schema:
        return example(next(s for s in schema["anyOf"] if s.get("type") != "null"), defs, name)
    if "const" in schema:
        return schema["const"]
    if "examples" in schema:  # a value the model documents as valid (a code from a closed list, say)
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "string":
        formats = {
            "uuid": str(uuid.uuid4()),
            "date-time": (RECEIVED - timedelta(minutes=1)).isoformat(),
            "ipvanyaddress": "203.0.113.77",
        }
        return formats.get(schema.get("format"), FIREFOX if name == "user_agent" else f"{name}-1")
    if kind in ("integer", "number"):
        low, high = schema.get("minimum", 1), schema.get("maximum", 10**6)
        return max(low, min(high, 2 if kind == "integer" else 2.5))
    if kind == "boolean":
        return True
    if kind == "array":
        return [example(schema.get("items", {"type": "string"}), defs, name)]
    if kind == "object":
        if "properties" in schema:
            return {key: example(sub, defs, key) for key, sub in schema["properties"].items()}
        if "propertyNames" in schema and (
            "$ref" in schema["propertyNames"] or "enum" in schema["propertyNames"]
        ):
            key = example(schema["propertyNames"], defs, name)
            return {key: example(schema.get("additionalProperties", {"type": "boolean"}), defs, key)}
        return {"key": f"{name}-value"}
    raise AssertionError(f"no example for the JSON Schema of {name}: {schema}; teach `example` this shape")


def full_example(event_type: str) -> dict:
    schema = EVENT_MODELS[event_type].model_json_schema()
    defs = schema.get("$defs", {})
    return {key: example(sub, defs, key) for key, sub in schema["properties"].items()}


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_every_field_of_every_event_type_reaches_the_published_row(event_type: str) -> None:
    raw = full_example(event_type)
    event = parse_event(raw)
    model = EVENT_MODELS[event_type]
    assert all(getattr(event, name) is not None for name in model.model_fields), "every field is set"
    book = ConsentBook()
    if "follows_erasure" in model.model_fields:
        erased = {"analytics": False}
        subject = event.user_id or event.anonymous_id
        book.apply(
            ConsentRecord(
                project_id="shop",
                subject=subject,
                consent=erased,
                erasure_request_id=ERASURE,
                changed_at=RECEIVED - timedelta(days=1),
            )
        )
    request = Request(
        project_id="shop", received_at=RECEIVED, sent_at=None, client_ip="198.51.100.23", forced_alias=True
    )
    policies = Policies(book, Scrubber(()), IpAnonymizer("truncate"))

    outcome = process_batch([raw], request, LIMITS, policies)

    assert outcome.rejected == [] and outcome.accepted == 1, (outcome.rejected, outcome.dropped_no_consent)
    (row,) = [orjson.loads(r) for _, value in outcome.records for r in rows_of_record(value)]
    own_json = orjson.loads(event.model_dump_json())
    for name in model.model_fields:
        if name in NETWORK_FIELDS:
            assert name not in row or name == "ip"
        elif name in GATEWAY_SET:
            assert row[name] == GATEWAY_SET[name], name
        else:
            assert row[name] == own_json[name], name
    assert row["project_id"] == "shop"
    if "ip" in model.model_fields:
        assert row["ip"] == "203.0.113.0"
        assert (row["browser"], row["os"]) == ("Firefox", "Linux")


# Server and network fields the gateway writes from the request; `BatchRows` leaves out those that are None.
SERVER_FIELDS = {"project_id", "received_at", "sent_at", "browser", "os", "device"}


@pytest.mark.parametrize("event_type", sorted(EVENT_MODELS))
def test_no_event_model_has_a_field_named_like_a_server_field(event_type: str) -> None:
    """A client's value under such a name would survive where the gateway's None is left out of the row."""
    assert not SERVER_FIELDS & set(EVENT_MODELS[event_type].model_fields)
