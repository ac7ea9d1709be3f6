"""Turning one posted batch into Kafka records and per-index rejections (pure: no I/O, clock passed in)."""

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pravis_schemas import (
    EVENT_MODELS,
    CustomEvent,
    Event,
    EventBatch,
    EventError,
    RejectedEvent,
    record_of_rows,
    validate_batch,
)
from pravis_schemas.events import event_row
from pravis_schemas.messages import ConsentRecord, consent_category
from pydantic import ValidationError

from pravis_gateway.consent import ConsentBook, Refusal
from pravis_gateway.enrich import IpAnonymizer, UserAgents, correct_skew
from pravis_gateway.identity import ALIAS_MERGES_IDENTIFIED_USERS, AliasPair
from pravis_gateway.scrub import Scrubber, scrub_text
from pravis_gateway.surveys.book import KIND_OF_EVENT, SurveyBook

# Free-text fields scrubbed of PII like `properties` values; ids stay as they are (they are the identity).
FREE_TEXT_FIELDS = (
    *("page_title", "error_message", "stack", "comment", "context", "intent"),
    *("feature_request_title", "feature_request_description"),
)
URL_FIELDS = ("page_url", "referrer")


@dataclass(frozen=True)
class Limits:
    max_event_bytes: int
    max_event_age: timedelta
    max_future_skew: timedelta


@dataclass(frozen=True)
class Policies:
    """What the gateway enforces besides the schema: consent, PII scrubbing, network anonymization."""

    consent: ConsentBook
    scrubber: Scrubber
    anonymize_ip: IpAnonymizer
    user_agents: UserAgents = field(default_factory=UserAgents)
    surveys: SurveyBook | None = None
    """Checks survey answers against the survey answered and remembers accepted survey events; without it
    (tests of the rest) survey events pass on their schema alone."""


@dataclass
class BatchOutcome:
    rows_by_key: dict[bytes, list[bytes]] = field(default_factory=dict)
    accepted: int = 0
    rejected: list[EventError] = field(default_factory=list)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    dropped_no_consent: int = 0
    consent_records: list[ConsentRecord] = field(default_factory=list)

    @property
    def records(self) -> list[tuple[bytes, bytes]]:
        """(key, value) records for the `events` topic: one per partition key, rows in posted order."""
        return [(key, record_of_rows(rows)) for key, rows in self.rows_by_key.items()]

    def accept(self, key: bytes, row: bytes) -> None:
        self.rows_by_key.setdefault(key, []).append(row)
        self.accepted += 1

    def reject(self, index: int, reason: str, error: str) -> None:
        self.rejected.append(EventError(index=index, error=error))
        self.rejected_by_reason[reason] += 1

    def rejected_records(self, raw_events: list[Any], project_id: str, received_at: datetime) -> list[tuple]:
        return [
            (
                None,
                RejectedEvent(
                    project_id=project_id,
                    received_at=received_at,
                    index=r.index,
                    error=r.error,
                    raw=raw_events[r.index],
                ).to_json(),
            )
            for r in self.rejected
        ]


@dataclass(frozen=True)
class Request:
    """What the gateway knows about one POST besides its events."""

    project_id: str
    received_at: datetime
    sent_at: datetime | None
    client_ip: str | None
    forced_alias: bool = False
    """Sent to the secret-key alias route: its `alias` events may merge two users who each have a history."""
    refused_aliases: Mapping[AliasPair, str] = field(default_factory=dict)
    """Aliases of the batch that rule 4 refuses, with the message (`pravis_gateway.identity.refusals`)."""


def parse_batch(body: bytes, max_events: int) -> EventBatch:
    """The posted batch; `ValidationError` when the body is not one.

    The fast parser (jiter) refuses the whole body for a lone UTF-16 surrogate escape in any string, which
    JSON's grammar allows and a browser sends for an emoji cut in half. Only when it fails is the body parsed
    again by the standard library's parser, which keeps such strings, so that only the events holding one are
    refused (by `process_batch`) and the rest of the batch is kept. What both refuse is a whole-body error.
    """
    context = {"max_events": max_events}
    try:
        return EventBatch.model_validate_json(body, context=context)
    except ValidationError as exc:
        if not any(e["type"] == "json_invalid" for e in exc.errors()):
            raise
        try:
            data = json.loads(body.decode())
        except (ValueError, RecursionError):
            raise exc from None
    return EventBatch.model_validate(data, context=context)


def _unencodable(exc: TypeError) -> tuple[str, str]:
    """(reason, message) for an event orjson cannot write: exactly what the warehouse cannot store."""
    text = str(exc)
    if "64-bit" in text:
        return "int_out_of_range", "an integer does not fit in 64 bits (Int64/UInt64)"
    if "surrogate" in text:
        return "lone_surrogate", "a string holds a lone UTF-16 surrogate, which is not valid Unicode"
    return "unencodable", f"the event cannot be written as JSON: {text}"


def process_batch(
    raw_events: list[Any], request: Request, limits: Limits, policies: Policies
) -> BatchOutcome:
    outcome = BatchOutcome()
    candidates, candidate_index = [], []
    for index, raw in enumerate(raw_events):
        try:
            size = len(orjson.dumps(raw))
        except TypeError as exc:
            outcome.reject(index, *_unencodable(exc))
            continue
        if size > limits.max_event_bytes:
            outcome.reject(index, "oversize", f"event is {size} bytes; the limit is {limits.max_event_bytes}")
        else:
            candidates.append(raw)
            candidate_index.append(index)

    valid, invalid = validate_batch(candidates)
    invalid_positions = {e.index for e in invalid}
    for error in invalid:
        outcome.reject(candidate_index[error.index], "invalid", error.error)
    valid_index = [i for pos, i in enumerate(candidate_index) if pos not in invalid_positions]

    oldest = request.received_at - limits.max_event_age
    newest = request.received_at + limits.max_future_skew
    pending_consent: dict[tuple[str, str], dict] = {}
    # Whether a (user_id, anonymous_id, category) may be kept: asked once per batch until a change is pending.
    allowed_of: dict[tuple[str | None, str | None, Any], bool] = {}
    rows = BatchRows(request, policies)
    for index, event in zip(valid_index, valid, strict=True):
        timestamp = correct_skew(event.timestamp, request.sent_at, request.received_at)
        if timestamp < oldest:
            outcome.reject(
                index, "too_old", f"timestamp {timestamp.isoformat()} is older than {limits.max_event_age}"
            )
            continue
        if timestamp > newest:
            outcome.reject(
                index, "in_future", f"timestamp {timestamp.isoformat()} is ahead of the server clock"
            )
            continue
        if event.event_type == "consent_change":
            record = ConsentRecord(
                project_id=request.project_id,
                subject=event.user_id or event.anonymous_id,
                consent=event.consent,
                changed_at=timestamp,
                source=event.source,
                explicit=event.explicit,
            )
            record = policies.consent.admit(record)
            if isinstance(record, Refusal):
                outcome.reject(index, record.reason, record.message)
                continue
            written = {"follows_erasure": record.follows_erasure}
            outcome.consent_records.append(record)
            pending_consent.setdefault((record.project_id, record.subject), {}).update(record.consent)
            allowed_of.clear()
        else:
            if event.event_type == "alias":
                if refusal := request.refused_aliases.get((event.user_id, event.previous_id)):
                    outcome.reject(index, ALIAS_MERGES_IDENTIFIED_USERS, refusal)
                    continue
                # Only the gateway says an alias was forced: a client's own `forced` is replaced.
                written = {"forced": True if request.forced_alias else None}
            else:
                written = {}
            category = consent_category(event.event_type)
            subject = (event.user_id, event.anonymous_id, category)
            if (allowed := allowed_of.get(subject)) is None:
                allowed = allowed_of[subject] = policies.consent.allows(
                    request.project_id, event.user_id, event.anonymous_id, category, pending_consent
                )
            if not allowed:
                outcome.dropped_no_consent += 1
                continue
            if policies.surveys and event.event_type in KIND_OF_EVENT:
                if event.event_type == "survey_answered":
                    answers = event.survey_answers
                    if problems := policies.surveys.answer_errors(
                        request.project_id, event.survey_id, answers
                    ):
                        outcome.reject(index, "survey_answer_invalid", "; ".join(problems))
                        continue
                    event = event.model_copy(update={"survey_answers": policies.surveys.scrubbed(answers)})
                # Noted before Kafka acks: if publishing fails the SDK retries, and until then holding the
                # survey back is the safe side.
                ids = [i for i in (event.user_id, event.anonymous_id) if i]
                policies.surveys.note(request.project_id, ids, event.event_type, event.survey_id, timestamp)
        outcome.accept(event.partition_key.encode(), rows.row(event, timestamp, written))
    outcome.rejected.sort(key=lambda e: e.index)
    return outcome


def _shape(model: type[Event]) -> tuple[bool, tuple[str, ...], tuple[str, ...]]:
    """Whether events of this model come from a device, and which of its fields are free text or URLs."""
    names = model.model_fields
    return (
        "ip" in names,
        tuple(n for n in FREE_TEXT_FIELDS if n in names),
        tuple(n for n in URL_FIELDS if n in names),
    )


_SHAPES = {model: _shape(model) for model in (*EVENT_MODELS.values(), CustomEvent)}


class BatchRows:
    """The flat `events` topic rows of one batch: each event on the server clock, PII scrubbed, network fields
    anonymized, and the fields in `written` given by the gateway instead of the client.

    Only events from a user's device (those with `ip`/`user_agent` fields) get network fields; for the others
    the request comes from a server, whose address says nothing about the user. Only the fields the gateway
    changes are read here; `event_row` writes all the others. What a batch's events share is worked out once:
    the server fields, and each (ip, user agent) pair's network fields (a browser batch has one). Shared
    fields that are None are left out of `written` rather than given as None: no event model has a field of
    their names (`ip` is never written from the event; `tests/test_row_fields.py` checks it), so the row is
    the same and `event_row` stays on its fast path.
    """

    def __init__(self, request: Request, policies: Policies) -> None:
        self.policies = policies
        self.scrub_url = policies.scrubber.url
        self.client_ip = request.client_ip
        self.day = request.received_at.date()
        self.server = _present(
            {"project_id": request.project_id, "received_at": request.received_at, "sent_at": request.sent_at}
        )
        self.network_of: dict[tuple[Any, str | None], dict[str, Any]] = {}

    def row(self, event: Event, timestamp: datetime, written: dict[str, Any]) -> bytes:
        fields = event.__dict__  # plain dict reads: pydantic's attribute fallback is slow for absent fields
        on_device, text_fields, url_fields = _SHAPES[type(event)]
        written["timestamp"] = timestamp
        if properties := fields["properties"]:
            written["properties"] = self.policies.scrubber.properties(properties)
        for name in text_fields:
            if text := fields[name]:
                written[name] = scrub_text(text)
        for name in url_fields:
            if url := fields[name]:
                written[name] = self.scrub_url(url)
        written.update(self.network(fields["ip"], fields["user_agent"]) if on_device else self.server)
        return event_row(event, written)

    def network(self, sent_ip: Any, user_agent: str | None) -> dict[str, Any]:
        """The server fields plus the network fields of one (ip, user agent) pair, None values left out."""
        key = (sent_ip, user_agent)
        if (known := self.network_of.get(key)) is None:
            ip = str(sent_ip) if sent_ip else self.client_ip
            browser, os_family, device = self.policies.user_agents.families(user_agent)
            network = {
                "ip": self.policies.anonymize_ip(ip, self.day),
                "browser": browser,
                "os": os_family,
                "device": device,
            }
            known = self.network_of[key] = {**self.server, **_present(network)}
        return known


def _present(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}
