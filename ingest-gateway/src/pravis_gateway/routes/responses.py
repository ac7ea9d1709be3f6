"""Response bodies of the ingest endpoints, shared so every error has the same shape."""

from typing import Any, Literal

import orjson
from fastapi.responses import Response
from pravis_schemas import EventError
from pydantic import BaseModel, Field


class JSONBody(Response):
    """JSON rendered with orjson (FastAPI deprecated its ORJSONResponse; the hot path keeps orjson)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class IngestResult(BaseModel):
    status: Literal["ok", "partial", "error"]
    processed: int
    rejected: list[EventError] | None = None
    dropped_no_consent: int | None = Field(
        None, description="Valid events dropped because the user has not consented to their category"
    )

    @classmethod
    def of(cls, processed: int, rejected: list[EventError], dropped_no_consent: int = 0) -> "IngestResult":
        dropped = dropped_no_consent or None
        if not rejected:
            return cls(status="ok", processed=processed, dropped_no_consent=dropped)
        status = "partial" if processed or dropped else "error"
        return cls(status=status, processed=processed, rejected=rejected, dropped_no_consent=dropped)

    @staticmethod
    def examples() -> dict[str, Any]:
        return {
            "page_view": {
                "summary": "One page view",
                "value": {
                    "sent_at": "2026-11-25T10:00:01Z",
                    "events": [
                        {
                            "event_id": "0b7b7d6e-8c1e-4a53-9f39-2a1c9a2b8f10",
                            "event_type": "page_view",
                            "timestamp": "2026-11-25T10:00:00Z",
                            "anonymous_id": "anon-1",
                            "session_id": "s-1",
                            "page_url": "https://boutique.example/shoes",
                        }
                    ],
                },
            }
        }


class ErrorBody(BaseModel):
    status: Literal["error"] = "error"
    error: str


def error(status: int, message: str, retry_after: int | None = None) -> JSONBody:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return JSONBody({"status": "error", "error": message}, status_code=status, headers=headers)


def retry_later(seconds: int, message: str) -> JSONBody:
    return error(503, message, retry_after=seconds)


COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    408: {"model": ErrorBody, "description": "The body did not arrive within PRAVIS_BODY_TIMEOUT_S"},
    413: {"model": ErrorBody, "description": "Body larger than PRAVIS_MAX_BODY_BYTES (or the batch limits)"},
    422: {"model": ErrorBody, "description": "A parameter or the body does not match the schema"},
    500: {"model": ErrorBody, "description": "Unexpected failure; logged and counted in /metrics"},
}
"""What any operation may answer: the body limits in front of every route, validation, and failures."""

_ERRORS: dict[int, str] = {
    400: "The body is not UTF-8 JSON",
    401: "Missing, unknown or revoked key (or a write key where a secret key is needed)",
    403: "The user has not consented to this category",
    404: "Nothing of that name in the key's project",
    409: "The subject's data was deleted: a grant must say explicit: true and be made after the deletion",
    415: "Unsupported Content-Encoding",
    429: "Rate limit exceeded; see Retry-After",
    503: "Kafka or the warehouse did not answer; nothing was changed; see Retry-After",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries of the error answers an operation gives besides `COMMON_RESPONSES`."""
    return {status: {"model": ErrorBody, "description": _ERRORS[status]} for status in statuses}


KEYED = errors(401)
"""Every operation that takes a key."""

EVENTS_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": IngestResult | ErrorBody,
        "description": "Every event rejected (reasons per index), or a body that is not a batch",
    },
    **errors(415, 429, 503),
}
