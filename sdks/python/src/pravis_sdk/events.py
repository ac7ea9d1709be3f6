"""Event construction: the envelope every event carries, JSON encoding, and idle-rotated sessions.

Pure logic, no I/O. Field names and types follow `schemas/json/*.schema.json`; a test validates the
SDK's output against those JSON Schemas.
"""

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pravis_schemas.events import ConsentCategory

SDK_NAME = "pravis-python"
SDK_VERSION = "0.1.0"

SESSION_IDLE_TIMEOUT_S = 30 * 60.0
"""A session ends after 30 minutes without events, as in the JS SDK and the product guide."""

CONSENT_CATEGORIES = frozenset(category.value for category in ConsentCategory)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _timestamp(value: datetime | str | None) -> str:
    if value is None:
        return now_iso()
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone")
    return value.isoformat()


def _default(value: Any) -> Any:
    """JSON for the values applications commonly put in properties."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def encode(event: Mapping[str, Any]) -> bytes:
    """Compact JSON of one event; non-finite floats are refused, as the gateway would refuse them."""
    return json.dumps(event, default=_default, allow_nan=False, separators=(",", ":")).encode()


def build_event(
    event_type: str,
    properties: Mapping[str, Any] | None = None,
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    session_id: str | None = None,
    timestamp: datetime | str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """One event: a fresh `event_id`, the envelope, and the type's own fields (`None` values left out)."""
    if user_id is None and anonymous_id is None:
        raise ValueError("an event needs a user_id or an anonymous_id")
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "timestamp": _timestamp(timestamp),
        "user_id": user_id,
        "anonymous_id": anonymous_id,
        "session_id": session_id,
        "properties": dict(properties or {}),
        "sdk_name": SDK_NAME,
        "sdk_version": SDK_VERSION,
        **fields,
    }
    return {name: value for name, value in event.items() if value is not None}


def check_consent(consent: Mapping[str, bool]) -> dict[str, bool]:
    unknown = set(consent) - CONSENT_CATEGORIES
    if unknown or not consent:
        raise ValueError(f"consent categories are {sorted(CONSENT_CATEGORIES)}; got {sorted(consent)}")
    return {name: bool(value) for name, value in consent.items()}


class Session:
    """A session id that rotates after `idle_timeout_s` without activity; thread-safe."""

    def __init__(
        self, idle_timeout_s: float = SESSION_IDLE_TIMEOUT_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._id: str | None = None
        self._last = 0.0

    def touch(self) -> str:
        """The current session id, a new one if the previous session went idle."""
        now = self._clock()
        with self._lock:
            if self._id is None or now - self._last > self._idle_timeout_s:
                self._id = str(uuid.uuid4())
            self._last = now
            return self._id

    def reset(self) -> None:
        with self._lock:
            self._id = None
