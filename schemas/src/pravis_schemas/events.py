"""Pydantic models of every analytics event, the HTTP batch body, and the Kafka messages built from them.

Parsing: `parse_event(data)` for one event, `validate_batch(events)` for a whole JSON array (one
pydantic-core pass; a bad event yields an `EventError(index, error)` instead of failing the batch).
A known `event_type` always validates against its own model, so a known type with a bad field is
rejected with that model's error; any other `event_type` with a valid envelope becomes a `CustomEvent`.
Timestamps must carry a timezone and are normalised to UTC.

What JSON may carry and the pipeline cannot store is refused per event, never silently changed: integers
outside Int64/UInt64, `NaN`/`Infinity` (and numbers such as `1e400` that overflow to it), and strings with a
lone UTF-16 surrogate (`"\\ud800"`, e.g. an emoji cut in half). NUL (`"\\u0000"`) is kept as data: JSON
allows it, Kafka values are bytes, and ClickHouse's String and JSON columns store it unchanged (verified with
chdb), so refusing it would lose events for no storage reason; consumers that hand strings to C APIs must
expect it. An object with a duplicate key keeps the last value, as both the gateway's JSON parsers (jiter,
and the standard library's on its fallback path) do: nothing downstream re-reads the posted text, every
consumer reads the gateway's re-serialised row, so no second parser can see the other value.

Contract of the `events` topic row (`EnrichedEvent.to_json()`), which the ClickHouse loader inserts
unchanged with `INSERT INTO events FORMAT JSONEachRow`, so its keys are the `events` column names:

- one flat JSON object per event: every event field at top level under its model name, followed by
  the server fields `project_id`, `received_at`, `sent_at`, `ip`, `browser`, `os`, `device`;
- `user_agent` is never written (the gateway reduces it to browser/os/device), and `ip` is the
  gateway's anonymised address, never the one the client sent;
- fields whose value is null are omitted (the column default applies); `properties` is always
  present as a JSON object and keeps nulls inside it;
- `event_id` is a UUID string; datetimes are ISO-8601 in UTC with a `Z` suffix, e.g.
  `2024-05-01T08:00:00.123000Z` (ClickHouse: `date_time_input_format='best_effort'`).

`EnrichedEvent.from_json(row)` reads such a row back.

A record of the `events` topic carries the events of one posted batch that go to one partition, as rows
separated by `\n` (`record_of_rows`; JSON rows never contain a raw newline): each event goes to the partition
of its key (user_id, else anonymous_id) under Kafka's default partitioner, and `records_by_partition` merges
a batch's keys of one partition into one record, keyed when it holds one key and without a key when it holds
several. Per-record costs dominate in both aiokafka and Faust, and a browser batch is one user, so this makes
publishing and stream processing several times cheaper per event while keeping every user's events on one
partition, in order. Consumers split with `rows_of_record`; the loader can pass a record to
`FORMAT JSONEachRow` unchanged.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from typing import Annotated, Any, Literal, Self, Union, get_args, get_origin
from uuid import UUID

import orjson
import pydantic_core
from annotated_types import MaxLen
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    IPvAnyAddress,
    PlainSerializer,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WrapSerializer,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from pravis_schemas.money import Currency, Money

EVENT_TYPE_PATTERN = r"^[A-Za-z][A-Za-z0-9_.:$-]*$"

MAX_EVENTS_PER_BATCH = 500
"""Default bound on events per HTTP batch; the gateway passes its own via `context={"max_events": n}`."""

MAX_PROPERTIES = 200
"""Keys per object in `properties` (top level and nested)."""
MAX_PROPERTY_KEY_LENGTH = 200
MAX_PROPERTY_DEPTH = 5
"""Objects/arrays may nest at most this many levels below `properties` itself."""
MAX_PROPERTY_STRING_LENGTH = 8192
MIN_PROPERTY_INT, MAX_PROPERTY_INT = -(2**63), 2**64 - 1
"""Integers in `properties` must fit Int64 or UInt64: the warehouse's JSON column and orjson stop there."""
_INFINITY = float("inf")

MAX_REQUEST_DURATION_MS = 3_600_000.0
"""One hour: anything longer is a client clock or unit bug, not a request."""
MAX_SIZE_BYTES = 2**53 - 1
"""Largest integer every SDK language (JavaScript numbers) carries exactly."""

MAX_FEEDBACK_COMMENT_LENGTH = 5000
MAX_FEEDBACK_CONTEXT_LENGTH = 500

RAW_MAX_BYTES = 32 * 1024
"""`RejectedEvent.raw` keeps at most this many bytes of the offending event's JSON text."""

MIN_YEAR, MAX_YEAR = 1900, 2299
"""ClickHouse DateTime64 range; a timestamp outside it cannot be stored."""

MAX_ORDER_ITEMS = 200
"""Line items per order event: a basket, not a catalogue."""
MAX_ITEM_QUANTITY = 1_000_000

MAX_ERROR_DETAILS = 3
"""`EventError.error` lists at most this many field errors of one event."""


def _to_utc(value: datetime) -> datetime:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise PydanticCustomError(
            "datetime_out_of_range",
            "Datetime year should be between {min_year} and {max_year}",
            {"min_year": MIN_YEAR, "max_year": MAX_YEAR},
        )
    return value.astimezone(UTC)


def _normalize_intent(value: str | None) -> str | None:
    if value is None:
        return None
    return " ".join(value.split()).lower() or None


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _check_json_container(value: dict | list, depth: int, path: str) -> None:
    """Bounds of `properties`, and that it holds only JSON values (one walk instead of `JsonValue`'s
    per-value Python discriminator, which cost more than the rest of the event's validation)."""
    if depth > MAX_PROPERTY_DEPTH:
        raise PydanticCustomError(
            "properties_too_deep",
            "Properties should nest at most {max_depth} levels, {path} is deeper",
            {"max_depth": MAX_PROPERTY_DEPTH, "path": path},
        )
    if type(value) is dict:
        if len(value) > MAX_PROPERTIES:
            raise PydanticCustomError(
                "properties_too_many",
                "Properties object {path} should have at most {max_keys} keys",
                {"max_keys": MAX_PROPERTIES, "path": path or "(top level)"},
            )
        for key, item in value.items():
            if type(key) is not str or len(key) > MAX_PROPERTY_KEY_LENGTH:
                raise PydanticCustomError(
                    "property_key_invalid",
                    "Property keys should be strings of at most {max_length} characters",
                    {"max_length": MAX_PROPERTY_KEY_LENGTH},
                )
            _check_json_item(item, depth, f"{path}.{key}" if path else key)
    else:
        for index, item in enumerate(value):
            _check_json_item(item, depth, f"{path}.{index}")


def _check_json_item(item: Any, depth: int, path: str) -> None:
    kind = type(item)
    if kind is str:
        if len(item) > MAX_PROPERTY_STRING_LENGTH:
            raise PydanticCustomError(
                "property_value_too_long",
                "Property {path} should have at most {max_length} characters",
                {"max_length": MAX_PROPERTY_STRING_LENGTH, "path": path},
            )
    elif kind is dict or kind is list:
        _check_json_container(item, depth + 1, path)
    elif kind is int:
        if not MIN_PROPERTY_INT <= item <= MAX_PROPERTY_INT:
            raise PydanticCustomError(
                "property_int_out_of_range",
                "Property {path} should be an integer that fits in 64 bits",
                {"path": path},
            )
    elif kind is float:
        # NaN compares false both ways, so this one chained comparison refuses NaN and both infinities.
        if not -_INFINITY < item < _INFINITY:
            raise PydanticCustomError(
                "property_number_not_finite", "Property {path} should be a finite number", {"path": path}
            )
    elif not (item is None or kind is bool):
        raise PydanticCustomError(
            "property_value_not_json", "Property {path} should be a JSON value", {"path": path}
        )


def _check_properties(value: dict[str, Any]) -> dict[str, Any]:
    if value:
        _check_json_container(value, 0, "")
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
Id = Annotated[str, Field(min_length=1, max_length=200)]
Properties = Annotated[
    dict[str, Any],
    AfterValidator(_check_properties),
    Field(
        description=(
            f"Free-form JSON object: at most {MAX_PROPERTIES} keys per object, keys of at most "
            f"{MAX_PROPERTY_KEY_LENGTH} characters, objects/arrays nested at most {MAX_PROPERTY_DEPTH} "
            f"levels deep, strings of at most {MAX_PROPERTY_STRING_LENGTH} characters, integers that fit "
            "Int64 or UInt64, finite numbers only."
        ),
        json_schema_extra={
            "maxProperties": MAX_PROPERTIES,
            "propertyNames": {"maxLength": MAX_PROPERTY_KEY_LENGTH},
        },
    ),
]


class ConsentCategory(StrEnum):
    ANALYTICS = "analytics"
    PERFORMANCE = "performance"
    FEEDBACK = "feedback"
    PERSONALIZATION = "personalization"


class HttpMethod(StrEnum):
    GET = "GET"
    HEAD = "HEAD"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    OPTIONS = "OPTIONS"
    TRACE = "TRACE"
    CONNECT = "CONNECT"


class EventBase(BaseModel):
    """Envelope every event carries; `event_id` is the client-made dedup key everywhere."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("user_id", "anonymous_id")
            ]
        },
    )

    event_id: UUID
    event_type: Annotated[str, Field(min_length=1, max_length=64, pattern=EVENT_TYPE_PATTERN)]
    timestamp: UtcDatetime
    user_id: Id | None = None
    anonymous_id: Id | None = None
    session_id: Id | None = None
    properties: Properties = Field(default_factory=dict)
    page_url: Annotated[str, MaxLen(2048)] | None = None
    referrer: Annotated[str, MaxLen(2048)] | None = None
    locale: Annotated[str, MaxLen(35)] | None = None
    app_version: Annotated[str, MaxLen(64)] | None = None
    sdk_name: Annotated[str, MaxLen(64)] | None = None
    sdk_version: Annotated[str, MaxLen(64)] | None = None

    @model_validator(mode="after")
    def _require_identity(self) -> Self:
        if self.user_id is None and self.anonymous_id is None:
            raise PydanticCustomError("identity_missing", "user_id or anonymous_id is required")
        return self

    @property
    def partition_key(self) -> str:
        """Kafka key of the `events` topic: user_id, else anonymous_id."""
        return self.user_id or self.anonymous_id or ""


class UserEvent(EventBase):
    """Events from a user's device; the gateway anonymises `ip` and reduces `user_agent` to
    browser/os/device."""

    user_agent: Annotated[str, MaxLen(1024)] | None = None
    ip: IPvAnyAddress | None = None


class PageViewEvent(UserEvent):
    event_type: Literal["page_view"]
    page_title: Annotated[str, MaxLen(1024)] | None = None


class ButtonClickEvent(UserEvent):
    event_type: Literal["button_click"]
    button_id: Id


class FeatureUseEvent(UserEvent):
    event_type: Literal["feature_use"]
    feature_name: Id


class ErrorEvent(UserEvent):
    event_type: Literal["error"]
    error_type: Id
    error_message: Annotated[str, MaxLen(4096)] | None = None
    stack: Annotated[str, MaxLen(16384)] | None = None


class AIInteractionEvent(EventBase):
    """One request to a voice/AI feature; feedback joins on `interaction_id`."""

    interaction_id: Id
    request_duration_ms: Annotated[float, Field(ge=0, le=MAX_REQUEST_DURATION_MS)]
    request_size_bytes: Annotated[int, Field(ge=0, le=MAX_SIZE_BYTES)] | None = None
    response_size_bytes: Annotated[int, Field(ge=0, le=MAX_SIZE_BYTES)] | None = None
    success: bool
    error_type: Id | None = None
    model_used: Annotated[str, MaxLen(128)] | None = None


class VoiceRequestEvent(AIInteractionEvent):
    event_type: Literal["voice_request"]
    intent: Annotated[
        Annotated[str, MaxLen(200)] | None,
        AfterValidator(_normalize_intent),
        Field(description="Normalised command/intent; lower-cased and whitespace-collapsed on validation."),
    ] = None


class TranscriptionEvent(AIInteractionEvent):
    event_type: Literal["transcription"]
    transcription_corrected: bool | None = None


class TTSEvent(AIInteractionEvent):
    event_type: Literal["tts"]


class ConversationEvent(AIInteractionEvent):
    event_type: Literal["conversation"]
    completed: bool | None = None
    follow_up: bool | None = None
    turn_count: Annotated[int, Field(ge=0, le=1_000_000)] | None = None


class ApiRequestEvent(EventBase):
    event_type: Literal["api_request"]
    endpoint: Annotated[
        str, Field(min_length=1, max_length=256, description="Route template, not the raw path.")
    ]
    method: Annotated[HttpMethod, BeforeValidator(_upper)]
    status: Annotated[int, Field(ge=100, le=599)]
    duration_ms: Annotated[float, Field(ge=0, le=MAX_REQUEST_DURATION_MS)]
    cache_hit: bool | None = None
    error_type: Id | None = None


class FeedbackEvent(EventBase):
    event_type: Literal["feedback"]
    interaction_id: Id | None = None
    rating: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, MaxLen(MAX_FEEDBACK_COMMENT_LENGTH)] | None = None
    context: (
        Annotated[
            str,
            Field(max_length=MAX_FEEDBACK_CONTEXT_LENGTH, description="Where/what the feedback is about."),
        ]
        | None
    ) = None


class ExperimentExposureEvent(EventBase):
    event_type: Literal["experiment_exposure"]
    experiment_key: Id
    variant: Id
    in_experiment: bool = True


class ConsentChangeEvent(EventBase):
    event_type: Literal["consent_change"]
    consent: Annotated[dict[ConsentCategory, bool], Field(min_length=1)]
    source: Annotated[str, MaxLen(200)] | None = None
    explicit: bool | None = Field(
        None,
        description="The user made this choice just now (a banner click), not a stored choice replayed. "
        "Needed to grant anything to a subject whose data was deleted.",
    )
    follows_erasure: Annotated[str, MaxLen(64)] | None = Field(
        None,
        description="Set by the gateway (a sent value is replaced): the deletion request of this subject "
        "that this change follows.",
    )


class IdentifyEvent(EventBase):
    """The user logged in or was recognised (Segment's identify): links the id used before, `anonymous_id`,
    to `user_id` explicitly; traits go in `properties`. See docs/identity.md for how links resolve."""

    event_type: Literal["identify"]
    user_id: Id


class AliasEvent(EventBase):
    """`previous_id` (an anonymous id or another user id) is the same person as `user_id`, the id to keep.
    Merging two user ids that each have a history is refused unless forced (docs/identity.md)."""

    event_type: Literal["alias"]
    user_id: Id
    previous_id: Id
    forced: bool | None = Field(
        None,
        description="Set by the gateway (a sent value is replaced): true when the alias came through the "
        "secret-key route that may merge two users who each have a history.",
    )

    @model_validator(mode="after")
    def _two_ids(self) -> Self:
        if self.previous_id == self.user_id:
            raise PydanticCustomError("alias_same_id", "previous_id should differ from user_id")
        return self


class OrderItem(BaseModel):
    """One line of a basket (Segment's `products` entry, reduced to what revenue needs)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    sku: Id
    product_id: Id | None = None
    quantity: Annotated[int, Field(ge=1, le=MAX_ITEM_QUANTITY)] = 1
    price: Annotated[Money, Field(description="Unit price, in the event's `currency`.")]


class _PricedEvent(UserEvent):
    """Commerce events (Segment's e-commerce spec, snake_case): an amount means nothing without its
    currency, so any amount requires `currency`."""

    currency: Currency | None = None

    @model_validator(mode="after")
    def _amounts_need_currency(self) -> Self:
        if self.currency is None:
            for name in ("price", "revenue", "discount", "tax", "shipping"):
                if getattr(self, name, None) is not None:
                    raise PydanticCustomError("currency_missing", "{field} needs a currency", {"field": name})
            if getattr(self, "items", None):
                raise PydanticCustomError("currency_missing", "items need a currency", {})
        return self


class _ProductEvent(_PricedEvent):
    product_id: Id | None = None
    sku: Id | None = None
    price: Money | None = None
    quantity: Annotated[int, Field(ge=1, le=MAX_ITEM_QUANTITY)] | None = None

    @model_validator(mode="after")
    def _names_a_product(self) -> Self:
        if self.product_id is None and self.sku is None:
            raise PydanticCustomError("product_missing", "product_id or sku is required")
        return self


class ProductViewedEvent(_ProductEvent):
    event_type: Literal["product_viewed"]


class ProductAddedEvent(_ProductEvent):
    """A product added to the cart."""

    event_type: Literal["product_added"]


class _BasketEvent(_PricedEvent):
    items: Annotated[list[OrderItem], Field(max_length=MAX_ORDER_ITEMS)] = []
    coupon: Annotated[str, MaxLen(200)] | None = None
    discount: Money | None = None
    tax: Money | None = None
    shipping: Money | None = None


class CheckoutStartedEvent(_BasketEvent):
    event_type: Literal["checkout_started"]
    order_id: Id | None = None
    revenue: Money | None = None


class OrderCompletedEvent(_BasketEvent):
    """A placed order; counted once per `order_id` however many events carry it. `revenue` follows Segment:
    the order's value without shipping and tax."""

    event_type: Literal["order_completed"]
    order_id: Id
    revenue: Money
    currency: Currency


class OrderRefundedEvent(_PricedEvent):
    """Money given back on an order; one refund counts per `order_id`, so send the order's whole refunded
    amount (docs/queries.md, revenue_daily)."""

    event_type: Literal["order_refunded"]
    order_id: Id
    revenue: Annotated[Money, Field(description="The amount refunded.")]
    currency: Currency
    items: Annotated[list[OrderItem], Field(max_length=MAX_ORDER_ITEMS)] = []


class ResourceSampleEvent(EventBase):
    """One process's resource use, sent every few seconds by the SDK's server middleware and by the
    pipeline's own services; the sender's identity is the process (`anonymous_id`), never a person."""

    event_type: Literal["resource_sample"]
    host: Annotated[str, Field(min_length=1, max_length=253)]
    service: Id
    pid: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    cpu_percent: Annotated[
        float, Field(ge=0, le=100_000, description="Since the previous sample; 100 = one core.")
    ]
    rss_bytes: Annotated[int, Field(ge=0, le=MAX_SIZE_BYTES)]
    open_fds: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    threads: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None
    loop_lag_ms: (
        Annotated[
            float,
            Field(
                ge=0, le=MAX_REQUEST_DURATION_MS, description="How late the asyncio event loop woke a timer."
            ),
        ]
        | None
    ) = None
    in_flight: Annotated[int, Field(ge=0, le=2**32 - 1, description="Requests being served.")] | None = None


# Surveys and feature requests (issue 23; definitions and answer checks in pravis_schemas.surveys).
MAX_SURVEY_TEXT_LENGTH = 5000
SurveyId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
SurveyVersion = Annotated[int, Field(ge=1, le=2**32 - 1)]


class SurveyAnswer(BaseModel):
    """One question's answer: `value` for rating/NPS, `choices` (keys) for choice questions, `text` for open
    text. Which one a question takes, and its range, is checked by the gateway against the survey version."""

    model_config = ConfigDict(extra="forbid")

    question_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    value: Annotated[int, Field(ge=0, le=10)] | None = None
    choices: Annotated[list[Annotated[str, MaxLen(100)]], Field(max_length=50)] = []
    text: Annotated[str, MaxLen(MAX_SURVEY_TEXT_LENGTH)] | None = None


class SurveyShownEvent(UserEvent):
    event_type: Literal["survey_shown"]
    survey_id: SurveyId
    survey_version: SurveyVersion


class SurveyDismissedEvent(UserEvent):
    event_type: Literal["survey_dismissed"]
    survey_id: SurveyId
    survey_version: SurveyVersion


class SurveyAnsweredEvent(UserEvent):
    """One event per submitted survey, all its answers in `survey_answers`."""

    event_type: Literal["survey_answered"]
    survey_id: SurveyId
    survey_version: SurveyVersion
    survey_answers: Annotated[list[SurveyAnswer], Field(min_length=1, max_length=30)]


class FeatureRequestEvent(UserEvent):
    """A request for the board; requests with the same normalised title are one request."""

    event_type: Literal["feature_request"]
    feature_request_title: Annotated[str, Field(min_length=1, max_length=200)]
    feature_request_description: Annotated[str, MaxLen(MAX_SURVEY_TEXT_LENGTH)] | None = None


class FeatureRequestVoteEvent(UserEvent):
    """A vote for the request with this (normalised) title; a person's votes count once."""

    event_type: Literal["feature_request_vote"]
    feature_request_title: Annotated[str, Field(min_length=1, max_length=200)]


EVENT_MODELS: dict[str, type[EventBase]] = {
    "page_view": PageViewEvent,
    "button_click": ButtonClickEvent,
    "feature_use": FeatureUseEvent,
    "error": ErrorEvent,
    "voice_request": VoiceRequestEvent,
    "transcription": TranscriptionEvent,
    "tts": TTSEvent,
    "conversation": ConversationEvent,
    "api_request": ApiRequestEvent,
    "feedback": FeedbackEvent,
    "experiment_exposure": ExperimentExposureEvent,
    "consent_change": ConsentChangeEvent,
    "identify": IdentifyEvent,
    "alias": AliasEvent,
    "product_viewed": ProductViewedEvent,
    "product_added": ProductAddedEvent,
    "checkout_started": CheckoutStartedEvent,
    "order_completed": OrderCompletedEvent,
    "order_refunded": OrderRefundedEvent,
    "resource_sample": ResourceSampleEvent,
    "survey_shown": SurveyShownEvent,
    "survey_dismissed": SurveyDismissedEvent,
    "survey_answered": SurveyAnsweredEvent,
    "feature_request": FeatureRequestEvent,
    "feature_request_vote": FeatureRequestVoteEvent,
}
"""Known event types; any other `event_type` is a `CustomEvent`."""

AI_EVENT_TYPES: tuple[str, ...] = tuple(
    event_type for event_type, model in EVENT_MODELS.items() if issubclass(model, AIInteractionEvent)
)
"""The assistant's request types (`AIInteractionEvent`s): success rate and latency are tracked for each."""

ORDER_EVENT_TYPE, REFUND_EVENT_TYPE = "order_completed", "order_refunded"
"""What revenue counts: orders and refunds, each once per `order_id`."""

CUSTOM_TAG = "custom"


class CustomEvent(EventBase):
    """Any event_type not in `EVENT_MODELS`: the envelope and `properties` only."""

    event_type: Annotated[
        str,
        Field(
            min_length=1,
            max_length=64,
            pattern=EVENT_TYPE_PATTERN,
            json_schema_extra={"not": {"enum": sorted(EVENT_MODELS)}},
        ),
    ]

    @field_validator("event_type")
    @classmethod
    def _not_known(cls, value: str) -> str:
        if value in EVENT_MODELS:
            raise PydanticCustomError(
                "custom_event_type_known", "{event_type} is a known event type", {"event_type": value}
            )
        return value


def _event_tag(value: Any) -> str | None:
    """Known event_type → its model; anything else that looks like an event → CustomEvent."""
    if isinstance(value, dict):
        event_type = value.get("event_type")
    elif isinstance(value, EventBase):
        event_type = value.event_type
    else:
        return None
    return event_type if isinstance(event_type, str) and event_type in EVENT_MODELS else CUSTOM_TAG


# Built from EVENT_MODELS so each event type is listed once; the members follow its order, which is the order
# of `oneOf` in the JSON Schema and OpenAPI documents.
Event = Annotated[
    Union[
        (
            *(Annotated[model, Tag(event_type)] for event_type, model in EVENT_MODELS.items()),
            Annotated[CustomEvent, Tag(CUSTOM_TAG)],
        )
    ],
    Discriminator(
        _event_tag,
        custom_error_type="event_not_object",
        custom_error_message="Event should be a JSON object with an event_type",
    ),
]
"""Any event: a known type's model or `CustomEvent`."""

_TAGS = frozenset((*EVENT_MODELS, CUSTOM_TAG))
_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
_EVENTS_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


class EventError(BaseModel):
    """Why the event at `index` of a batch was rejected, e.g. `rating: Input should be ... 5`."""

    index: int
    error: str


def _describe(errors: Sequence[Any]) -> str:
    parts = []
    for err in errors[:MAX_ERROR_DETAILS]:
        loc = err["loc"]
        if loc and loc[0] in _TAGS:
            loc = loc[1:]
        where = ".".join(str(part) for part in loc)
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    if len(errors) > MAX_ERROR_DETAILS:
        parts.append(f"(+{len(errors) - MAX_ERROR_DETAILS} more)")
    return "; ".join(parts)


def describe_error(exc: ValidationError) -> str:
    """Short human-readable reason for a failed `parse_event`, as used in `EventError.error`."""
    return _describe(exc.errors(include_url=False, include_context=False, include_input=False))


def parse_event(data: dict[str, Any] | bytes | str) -> Event:
    """Validate one event (a dict or its JSON text); raises `pydantic.ValidationError`."""
    if isinstance(data, bytes | bytearray | str):
        return _EVENT_ADAPTER.validate_json(data)
    return _EVENT_ADAPTER.validate_python(data)


def validate_batch(events: bytes | str | Sequence[Any]) -> tuple[list[Event], list[EventError]]:
    """Validate a JSON array (text) or a list of raw events; returns the valid events in order and one
    `EventError` per invalid index. Raises `ValidationError` only if the input is not an array at all.

    The whole array is validated in one pydantic-core pass; only when some event is bad are the good
    ones validated a second time (from the already parsed items).
    """
    is_json = isinstance(events, bytes | bytearray | str)
    try:
        if is_json:
            return _EVENTS_ADAPTER.validate_json(events), []
        return _EVENTS_ADAPTER.validate_python(events), []
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        if any(not err["loc"] or not isinstance(err["loc"][0], int) for err in errors):
            raise
        by_index: dict[int, list[Any]] = {}
        for err in errors:
            by_index.setdefault(err["loc"][0], []).append({**err, "loc": err["loc"][1:]})
    items = pydantic_core.from_json(events) if is_json else list(events)
    good = [item for index, item in enumerate(items) if index not in by_index]
    rejected = [EventError(index=index, error=_describe(errs)) for index, errs in sorted(by_index.items())]
    return _EVENTS_ADAPTER.validate_python(good), rejected


def _max_events(value: list[Any], info: ValidationInfo) -> list[Any]:
    limit = (info.context or {}).get("max_events", MAX_EVENTS_PER_BATCH)
    if len(value) > limit:
        raise PydanticCustomError(
            "too_many_events", "Batch should have at most {limit} events", {"limit": limit}
        )
    return value


class EventBatch(BaseModel):
    """HTTP body of `POST /api/v1/analytics/events`. Events stay raw here so one bad event does not
    fail the batch: pass `events` to `validate_batch`. Bound the size with
    `EventBatch.model_validate_json(body, context={"max_events": n})` (default `MAX_EVENTS_PER_BATCH`).
    """

    model_config = ConfigDict(extra="forbid")

    events: Annotated[list[Any], AfterValidator(_max_events)]
    sent_at: UtcDatetime | None = None
    api_key: Annotated[
        str | None,
        Field(
            max_length=200,
            description="Write key, only for `navigator.sendBeacon` bodies (beacons cannot set X-API-Key).",
        ),
    ] = None


_SERVER_FIELDS = ("project_id", "received_at", "sent_at", "ip", "browser", "os", "device")
_NOT_IN_ROW = frozenset(("user_agent", "ip"))


class EnrichedEvent(BaseModel):
    """An event plus the fields the gateway adds; `to_json()` is the flat `events` topic row."""

    model_config = ConfigDict(extra="forbid")

    event: Event
    project_id: Id
    received_at: UtcDatetime
    sent_at: UtcDatetime | None = None
    ip: Annotated[str, Field(max_length=64, description="Anonymised by the gateway.")] | None = None
    browser: Annotated[str, MaxLen(128)] | None = None
    os: Annotated[str, MaxLen(128)] | None = None
    device: Annotated[str, MaxLen(128)] | None = None

    def to_json(self) -> bytes:
        """One flat JSON object: event fields then server fields (see the module docstring)."""
        event = self.event
        body = event.__pydantic_serializer__.to_json(event, exclude=_NOT_IN_ROW, exclude_none=True)
        server = self.__pydantic_serializer__.to_json(self, exclude={"event"}, exclude_none=True)
        return body[:-1] + b"," + server[1:]

    @classmethod
    def from_json(cls, row: bytes | str) -> EnrichedEvent:
        """Read back a row written by `to_json()`."""
        data = pydantic_core.from_json(row)
        server = {name: data.pop(name) for name in _SERVER_FIELDS if name in data}
        return cls(event=data, **server)


_JSON_NATIVE = (str, int, float, bool, type(None), UUID, datetime, AwareDatetime)


def _orjson_writes_as_pydantic(annotation: Any) -> bool:
    """Whether orjson writes every value of this type exactly as pydantic's JSON serializer does: strings,
    numbers, booleans, UUIDs, datetimes, str enums, literals, JSON objects and lists of them, with no custom
    serializer. Anything else (Decimal, nested models, ...) is left to the model's own serializer."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        if any(isinstance(m, _CUSTOM_SERIALIZERS) for m in _metadata(args[1:])):
            return False
        return _orjson_writes_as_pydantic(args[0])
    if origin is Union or origin is types.UnionType or origin is list:
        return all(_orjson_writes_as_pydantic(arg) for arg in args)
    if origin is Literal:
        return all(isinstance(arg, str | int | bool) for arg in args)
    if origin is dict:
        return args in ((str, Any), ())
    if origin is None and isinstance(annotation, type):
        return issubclass(annotation, _JSON_NATIVE) or issubclass(annotation, StrEnum)
    return annotation is Any


def _metadata(items: Sequence[Any]) -> list[Any]:
    return [m for item in items for m in (item.metadata if isinstance(item, FieldInfo) else [item])]


_CUSTOM_SERIALIZERS = (PlainSerializer, WrapSerializer)


@cache
def _row_writer_is_orjson(model: type[BaseModel]) -> bool:
    """Whether `event_row` may write rows of this model with orjson alone (read once, from its fields)."""
    decorators = model.__pydantic_decorators__
    if decorators.field_serializers or decorators.model_serializers or decorators.computed_fields:
        return False
    return all(
        not any(isinstance(m, _CUSTOM_SERIALIZERS) for m in _metadata(field.metadata))
        and _orjson_writes_as_pydantic(field.annotation)
        for name, field in model.model_fields.items()
        if name not in _NOT_IN_ROW
    )


def event_row(event: EventBase, written: Mapping[str, Any]) -> bytes:
    """The flat `events` row of `event` (see the module docstring), with the fields in `written` (event fields
    the gateway changes, then the server fields) given instead of the event's own; None values are left out.

    Every field of every event type (those added later too) keeps its model's JSON form: a model whose fields
    are all of types orjson writes exactly as pydantic does is written by orjson from the validated values in
    one call; any other by its own serializer, with orjson appending `written`. `written` values are plain
    JSON values or datetimes. This is the gateway's per-event path: it builds no model and validates nothing
    again.
    """
    if _row_writer_is_orjson(type(event)):
        # C-level dict work only, unless `written` drops a field (one holding None): the common row costs one
        # comprehension and one orjson call.
        row = {name: value for name, value in event.__dict__.items() if value is not None}
        for name in _NOT_IN_ROW:
            row.pop(name, None)
        row.update(written)
        if None in written.values():
            for name, value in written.items():
                if value is None:
                    del row[name]
        return orjson.dumps(row, option=orjson.OPT_UTC_Z)
    # A plain set: pydantic-core takes a frozenset `exclude` by a path several times slower.
    body = event.__pydantic_serializer__.to_json(event, exclude={*_NOT_IN_ROW, *written}, exclude_none=True)
    rest = {name: value for name, value in written.items() if value is not None}
    return body[:-1] + b"," + orjson.dumps(rest, option=orjson.OPT_UTC_Z)[1:] if rest else body


def _raw_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        raw = bytes(value)
    elif isinstance(value, str):
        raw = value.encode(errors="backslashreplace")
    else:
        try:
            raw = pydantic_core.to_json(value)
        except pydantic_core.PydanticSerializationError:
            # Refused events may hold what JSON encoders refuse (a lone surrogate): keep them readable.
            raw = json.dumps(value, default=repr).encode()
    return raw[:RAW_MAX_BYTES].decode(errors="ignore")


class RejectedEvent(BaseModel):
    """Message of the `events.rejected` topic: an event the gateway refused and why."""

    model_config = ConfigDict(extra="forbid")

    project_id: Id
    received_at: UtcDatetime
    index: Annotated[int, Field(ge=0, description="Position of the event in its batch.")]
    error: str
    raw: Annotated[
        str,
        BeforeValidator(_raw_text),
        Field(
            description=(
                f"The offending event as JSON text, cut to {RAW_MAX_BYTES} bytes; pass the parsed "
                "value (dumped to JSON) or the text/bytes as received."
            )
        ),
    ]

    def to_json(self) -> bytes:
        return self.__pydantic_serializer__.to_json(self)


def record_of_rows(rows: Sequence[bytes]) -> bytes:
    """The value of one `events` record holding these flat rows (all of one key)."""
    return b"\n".join(rows)


MAX_RECORD_BYTES = 512 * 1024
"""Largest `events` record value `records_by_partition` makes. Kafka refuses a produce request or record batch
over 1 MiB by default (producer `max_request_size`, broker `message.max.bytes`), and a batch's rows, with the
fields the gateway adds, outgrow a body at the gateway's 1 MiB limit: such a batch was answered 503 on every
retry. Half of it leaves room for the record framing and for a row of any allowed size."""


def records_by_partition(
    records: Sequence[tuple[bytes, bytes]],
    partition_of: Callable[[bytes], int],
    max_bytes: int = MAX_RECORD_BYTES,
) -> list[tuple[bytes | None, int, bytes]]:
    """`events` records (key, value) merged into (key, partition, value) records, one per partition unless
    its rows pass `max_bytes` (then as few as fit, in order), values in the order given: every row stays on
    its key's partition and in its key's order. A merged record holding several keys has no key (None); one
    holding a single key keeps it."""
    merged: list[tuple[bytes | None, int, list[bytes]]] = []
    open_record: dict[int, int] = {}  # partition -> index in `merged` of the record still filling
    room: dict[int, int] = {}
    for key, value in records:
        partition = partition_of(key)
        for piece in (value,) if len(value) <= max_bytes else _pieces(value, max_bytes):
            at = open_record.get(partition)
            if at is None or len(piece) + 1 > room[partition]:
                open_record[partition], room[partition] = len(merged), max_bytes - len(piece)
                merged.append((key, partition, [piece]))
                continue
            record_key, _, values = merged[at]
            values.append(piece)
            room[partition] -= len(piece) + 1
            if record_key != key:
                merged[at] = (None, partition, values)
    return [(key, partition, record_of_rows(values)) for key, partition, values in merged]


def _pieces(value: bytes, max_bytes: int) -> list[bytes]:
    """A value of newline-separated rows cut into values of at most `max_bytes` (a longer row stays whole)."""
    pieces: list[bytes] = []
    rows: list[bytes] = []
    size = -1
    for row in value.split(b"\n"):
        if rows and size + 1 + len(row) > max_bytes:
            pieces.append(record_of_rows(rows))
            rows, size = [], -1
        rows.append(row)
        size += 1 + len(row)
    pieces.append(record_of_rows(rows))
    return pieces


def rows_of_record(value: bytes) -> list[bytes]:
    """The flat rows in one `events` record value."""
    return [row for row in value.split(b"\n") if row]
