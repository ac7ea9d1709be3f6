"""Rows of the `events` topic as the gateway writes them (flat JSON, `received_at` with a Z suffix)."""

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def row(event_type: str, received: datetime, project: str = "p1", user: str = "u1", **fields: Any) -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "timestamp": iso(received),
        "user_id": user,
        "properties": {},
        "project_id": project,
        "received_at": iso(received),
        **fields,
    }


def api(received: datetime, endpoint: str = "/api/v1/items", status: int = 200, ms: float = 10.0, **kw: Any):
    return row("api_request", received, endpoint=endpoint, method="GET", status=status, duration_ms=ms, **kw)


def ai(received: datetime, success: bool = True, ms: float = 500.0, model: str = "whisper-small", **kw: Any):
    fields = {"interaction_id": "i1", "request_duration_ms": ms, "success": success, "model_used": model}
    return row("voice_request", received, **fields, **kw)


def encode(rows: list[dict]) -> bytes:
    return b"\n".join(orjson.dumps(r) for r in rows)
