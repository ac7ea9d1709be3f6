"""Which table each topic loads into, how a message becomes a row, and which insert errors are the data's
fault.

Pure: no Kafka, no ClickHouse. The `events` topic is the hot path (the gateway validated every event already),
so its messages go to ClickHouse untouched and ClickHouse's JSON parser is the validator: a batch it refuses
is bisected down to the offending messages. The other topics carry a few messages per minute, so each is
validated with its pydantic model here and gets a precise reason when it is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from pravis_schemas import RejectedEvent, topics
from pravis_schemas.messages import Alert, ConsentRecord, ScoredFeedback, ScoredSurveyAnswer
from pydantic import BaseModel, ValidationError

REASON_MAX_CHARS = 2000

DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        25,  # CANNOT_PARSE_ESCAPE_SEQUENCE
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        33,  # CANNOT_READ_ALL_DATA
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        376,  # CANNOT_PARSE_UUID
        377,  # ILLEGAL_SYNTAX_FOR_DATA_TYPE
        467,  # CANNOT_PARSE_BOOL
        469,  # VIOLATED_CONSTRAINT
        691,  # UNKNOWN_ELEMENT_OF_ENUM
    }
)
"""ClickHouse error codes that mean "these rows are bad": retrying cannot help, bisecting finds the rows. Any
other error (connection refused, timeout, memory, too many parts) is the warehouse's and is retried with
backoff."""

_CODE = re.compile(r"\bcode: (\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class Route:
    table: str
    prepare: Callable[[bytes, int, int], bytes]
    """(value, partition, offset) → the JSON row to insert; raises `Invalid` for a message that cannot
    load."""


class Invalid(ValueError):
    """A message that cannot become a row; its text is the reason stored in `loader_rejected`."""


def _validated(model: type[BaseModel], value: bytes) -> BaseModel:
    try:
        return model.model_validate_json(value)
    except ValidationError as exc:
        raise Invalid(f"{model.__name__}: {describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(map(str, err['loc'])) or '(message)'}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)[:3]
    ]
    return "; ".join(parts)


def _event(value: bytes, partition: int, offset: int) -> bytes:
    return value


def _rejected_event(value: bytes, partition: int, offset: int) -> bytes:
    # Rejected events carry no id of their own; the Kafka position is what makes a redelivered copy collapse.
    row = _validated(RejectedEvent, value).model_dump(mode="json")
    return orjson.dumps({**row, "kafka_partition": partition, "kafka_offset": offset})


def _alert(value: bytes, partition: int, offset: int) -> bytes:
    alert = _validated(Alert, value)
    assert isinstance(alert, Alert)
    return alert.to_json()


def _scored_feedback(value: bytes, partition: int, offset: int) -> bytes:
    scored = _validated(ScoredFeedback, value)
    assert isinstance(scored, ScoredFeedback)
    return scored.to_json()


def _scored_survey_answer(value: bytes, partition: int, offset: int) -> bytes:
    scored = _validated(ScoredSurveyAnswer, value)
    assert isinstance(scored, ScoredSurveyAnswer)
    return scored.to_json()


def _consent_record(value: bytes, partition: int, offset: int) -> bytes:
    # Two identical changes are two facts of the history; only a redelivered copy (same position) collapses.
    row = _validated(ConsentRecord, value).model_dump(mode="json", exclude_none=True)
    return orjson.dumps({**row, "kafka_partition": partition, "kafka_offset": offset})


ROUTES: dict[str, Route] = {
    topics.EVENTS: Route("events", _event),
    topics.EVENTS_REJECTED: Route("events_rejected", _rejected_event),
    topics.ALERTS: Route("alerts", _alert),
    topics.FEEDBACK_SCORED: Route("feedback_scored", _scored_feedback),
    topics.CONSENT: Route("consent_history", _consent_record),
    topics.SURVEY_ANSWERS_SCORED: Route("survey_answer_sentiment", _scored_survey_answer),
}
"""Topic → table. Exposures are `experiment_exposure` rows of `events`."""


def error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    if isinstance(code, int):
        return code
    match = _CODE.search(str(exc))
    return int(match.group(1)) if match else None


def is_data_error(exc: BaseException) -> bool:
    """True when ClickHouse refused the rows themselves (parse/type errors), not when it failed to take
    them."""
    code = error_code(exc)
    if code in DATA_ERROR_CODES:
        return True
    # 252 is also "too many parts" (merges behind: retry), but rows spread over too many partitions are the
    # batch's own doing: halving it loads them.
    if code == 252 and "Too many partitions for single INSERT block" in str(exc):
        return True
    # The embedded warehouse (chdb behind the HTTP interface) fails text that is not UTF-8 with a generic
    # code.
    return code == 1001 and "codec can't decode" in str(exc)


def reason_of(exc: BaseException) -> str:
    """The server's message without the client's preamble, cut to a storable size."""
    text = str(exc)
    start = text.find("Code: ")
    return (text[start:] if start >= 0 else text)[:REASON_MAX_CHARS]
