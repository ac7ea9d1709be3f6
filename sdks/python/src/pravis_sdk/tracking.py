"""The event API both clients share: track, identify, alias, page, feedback, consent, api_request, AI timing.

Subclasses provide `_wake()` (start a flush because `flush_at` events are waiting); everything here only
builds and queues events, so it never blocks on the network.
"""

import contextvars
import functools
import inspect
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from pravis_schemas import ports
from pravis_schemas.events import AI_EVENT_TYPES

from pravis_sdk.buffer import ErrorCallback, EventBuffer, Stats
from pravis_sdk.events import (
    SESSION_IDLE_TIMEOUT_S,
    Session,
    build_event,
    check_consent,
    encode,
)
from pravis_sdk.policy import (
    FLUSH_AT,
    FLUSH_INTERVAL_S,
    MAX_EVENT_BYTES,
    MAX_QUEUE_SIZE,
    MAX_RETRIES,
    RetryPolicy,
)

DEFAULT_HOST = f"http://{ports.LOCAL_HOST}:{ports.GATEWAY}"
"""The gateway of a local `make up` stack."""

EVENTS_PATH = "/api/v1/analytics/events"
F = TypeVar("F", bound=Callable[..., Any])


class Tracker(ABC):
    def __init__(
        self,
        api_key: str,
        host: str = DEFAULT_HOST,
        *,
        flush_at: int = FLUSH_AT,
        flush_interval: float = FLUSH_INTERVAL_S,
        max_queue_size: int = MAX_QUEUE_SIZE,
        max_retries: int = MAX_RETRIES,
        retry_policy: RetryPolicy | None = None,
        timeout: float = 10.0,
        gzip: bool = False,
        on_error: ErrorCallback | None = None,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        app_version: str | None = None,
        session_idle_timeout: float = SESSION_IDLE_TIMEOUT_S,
        disabled: bool = False,
    ) -> None:
        """`gzip=True` sends `Content-Encoding: gzip` bodies (needs a gateway that accepts them).
        Events without an explicit user go under `user_id` (see `identify`) or a per-client `anonymous_id`."""
        if not api_key:
            raise ValueError("api_key is required")
        self.api_key = api_key
        self.host = host.rstrip("/")
        self.url = self.host + EVENTS_PATH
        self.flush_at = max(1, flush_at)
        self.flush_interval = flush_interval
        self.policy = retry_policy or RetryPolicy(max_retries=max_retries)
        self.timeout = timeout
        self.gzip = gzip
        self.disabled = disabled
        self.app_version = app_version
        self.user_id = user_id
        self.anonymous_id = anonymous_id or str(uuid.uuid4())
        self.session = Session(session_idle_timeout)
        self.buffer = EventBuffer(max_queue_size, on_error)

    @abstractmethod
    def _wake(self) -> None:
        """Tell the sender (thread or task) that a batch may be ready."""

    @property
    def headers(self) -> dict[str, str]:
        headers = {"X-API-Key": self.api_key, "Content-Type": "application/json"}
        if self.gzip:
            headers["Content-Encoding"] = "gzip"
        return headers

    def identify(
        self, user_id: str | None, traits: Mapping[str, Any] | None = None, anonymous_id: str | None = None
    ) -> str | None:
        """Login. Without `anonymous_id`: this client's visitor is now `user_id`; sends an `identify` event
        linking the client's anonymous id to it (`traits` as properties), and later events without explicit
        ids go under `user_id`. Identifying the current user again sends only with traits; another user logs
        out first, so the previous user's anonymous id is never linked to the next. `identify(None)` is
        `reset()`. With `anonymous_id` (a server relaying a visitor's login, e.g. the id from their cookie):
        sends that link only; this client's own identity is unchanged. Rules: docs/identity.md.
        Returns the event's id, or None when nothing was queued."""
        if anonymous_id is not None:
            if user_id is None:
                raise ValueError("identify with an anonymous_id needs the user_id it logged in as")
            return self.track("identify", traits, user_id=user_id, anonymous_id=anonymous_id)
        if user_id is None:
            self.reset()
            return None
        if user_id == self.user_id and not traits:
            return None
        if self.user_id not in (None, user_id):
            self.reset()
        self.user_id = user_id
        return self.track(
            "identify",
            traits,
            user_id=user_id,
            anonymous_id=self.anonymous_id,
            session_id=self.session.touch(),
        )

    def reset(self) -> None:
        """Logout: a new anonymous id and session for later events; sends nothing."""
        self.user_id = None
        self.anonymous_id = str(uuid.uuid4())
        self.session.reset()

    def alias(self, previous_id: str, user_id: str) -> str | None:
        """`previous_id` (an anonymous id or another user id) is the same person as `user_id`, the id to
        keep: sends an `alias` event carrying only those two ids. The client's identity does not change. The
        gateway refuses to merge two users who each have a history unless forced with the secret key."""
        if not previous_id or not user_id or previous_id == user_id:
            raise ValueError("alias needs a previous_id and a different user_id")
        return self.track("alias", user_id=user_id, previous_id=previous_id)

    def track(
        self,
        event_type: str,
        properties: Mapping[str, Any] | None = None,
        *,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        session_id: str | None = None,
        timestamp: datetime | str | None = None,
        **fields: Any,
    ) -> str | None:
        """Queue one event; `fields` are the type's own top-level fields (e.g. `interaction_id`).
        Returns its `event_id`, or None when the event was dropped (counted in `stats()`)."""
        if self.disabled:
            return None
        if user_id is None and anonymous_id is None:
            user_id = self.user_id
            anonymous_id = None if user_id else self.anonymous_id
            session_id = session_id or self.session.touch()
        if self.app_version and "app_version" not in fields:
            fields["app_version"] = self.app_version
        event = build_event(
            event_type,
            properties,
            user_id=user_id,
            anonymous_id=anonymous_id,
            session_id=session_id,
            timestamp=timestamp,
            **fields,
        )
        item = encode(event)
        if len(item) > MAX_EVENT_BYTES:
            self.buffer.refuse(
                item, "too_large", f"{event_type} event is {len(item)} bytes; the limit is {MAX_EVENT_BYTES}"
            )
            return None
        if not self.buffer.put(item):
            return None
        if len(self.buffer) >= self.flush_at:
            self._wake()
        return event["event_id"]

    def page(
        self, url: str, *, title: str | None = None, referrer: str | None = None, **kwargs: Any
    ) -> str | None:
        return self.track("page_view", page_url=url, page_title=title, referrer=referrer, **kwargs)

    def feedback(
        self,
        rating: int,
        *,
        interaction_id: str | None = None,
        comment: str | None = None,
        context: str | None = None,
        **kwargs: Any,
    ) -> str | None:
        """A 1-5 rating; `interaction_id` joins it to the AI request it rates."""
        return self.track(
            "feedback",
            rating=rating,
            interaction_id=interaction_id,
            comment=comment,
            context=context,
            **kwargs,
        )

    def survey_shown(self, survey: Mapping[str, Any], **kwargs: Any) -> str | None:
        """Record that `survey` (as `get_surveys` returned it) was shown: the gateway caps on it."""
        return self.track("survey_shown", survey_id=survey["id"], survey_version=survey["version"], **kwargs)

    def survey_dismissed(self, survey: Mapping[str, Any], **kwargs: Any) -> str | None:
        return self.track(
            "survey_dismissed", survey_id=survey["id"], survey_version=survey["version"], **kwargs
        )

    def survey_answered(
        self, survey: Mapping[str, Any], answers: list[Mapping[str, Any]], **kwargs: Any
    ) -> str | None:
        """Submit one survey's answers, `[{"question_id": ..., "value" | "choices" | "text": ...}]`; the
        gateway refuses (in the batch's `rejected`) answers that do not fit the survey's questions."""
        return self.track(
            "survey_answered",
            survey_id=survey["id"],
            survey_version=survey["version"],
            survey_answers=list(answers),
            **kwargs,
        )

    def set_consent(
        self,
        consent: Mapping[str, bool],
        *,
        source: str | None = None,
        explicit: bool | None = None,
        **kwargs: Any,
    ) -> str | None:
        """Record a consent change, e.g. `{"analytics": True, "personalization": False}`; `explicit=True`
        says the user acted just now, which the gateway needs to grant anything after a deletion."""
        return self.track(
            "consent_change", consent=check_consent(consent), source=source, explicit=explicit, **kwargs
        )

    def api_request(
        self,
        endpoint: str,
        method: str,
        status: int,
        duration_ms: float,
        *,
        cache_hit: bool | None = None,
        error_type: str | None = None,
        **kwargs: Any,
    ) -> str | None:
        """One served API request; `endpoint` is the route template (`/products/{id}`), not the raw path."""
        return self.track(
            "api_request",
            endpoint=endpoint,
            method=method.upper(),
            status=status,
            duration_ms=round(duration_ms, 3),
            cache_hit=cache_hit,
            error_type=error_type,
            **kwargs,
        )

    def ai_call(
        self, event_type: str = "voice_request", *, model: str | None = None, **fields: Any
    ) -> "AICall":
        """Time an AI request and emit its AIInteraction event: a context manager (sync or async) or a
        decorator (sync or async functions). Success is "no exception"; the exception's class name becomes
        `error_type`. Inside, `current_ai_call()` gives the call to `set()` sizes or mark a failure."""
        if event_type not in AI_EVENT_TYPES:
            raise ValueError(f"AI event types are {sorted(AI_EVENT_TYPES)}; got {event_type!r}")
        return AICall(self, event_type, model, fields)

    def stats(self) -> Stats:
        """Counters of every event: queued now, accepted, rejected by the gateway, dropped by the SDK."""
        return self.buffer.stats()


_current_call: contextvars.ContextVar["AICall | None"] = contextvars.ContextVar(
    "pravis_ai_call", default=None
)


def current_ai_call() -> "AICall | None":
    """The `AICall` being timed in this context (e.g. inside a function decorated with `ai_call`)."""
    return _current_call.get()


class AICall:
    """One timed AI request. `interaction_id` is known before the call, so feedback can reference it."""

    def __init__(self, tracker: Tracker, event_type: str, model: str | None, fields: dict[str, Any]) -> None:
        self._tracker = tracker
        self.event_type = event_type
        self.fields: dict[str, Any] = {"model_used": model, **fields}
        self.interaction_id: str = self.fields.pop("interaction_id", None) or str(uuid.uuid4())
        self.error_type: str | None = None
        self.event_id: str | None = None
        self._start = 0.0
        self._token: contextvars.Token | None = None

    def set(self, **fields: Any) -> None:
        """Add or change fields of the event, e.g. `response_size_bytes`, `intent`, `completed`."""
        self.fields.update(fields)

    def fail(self, error_type: str) -> None:
        """Mark the call failed although no exception escaped (e.g. the model answered with an error)."""
        self.error_type = error_type

    def __enter__(self) -> Self:
        self._start = time.perf_counter()
        self._token = _current_call.set(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        duration_ms = (time.perf_counter() - self._start) * 1000
        if self._token is not None:
            _current_call.reset(self._token)
        if exc_type is not None and self.error_type is None:
            self.error_type = exc_type.__name__
        self.event_id = self._tracker.track(
            self.event_type,
            interaction_id=self.interaction_id,
            request_duration_ms=round(duration_ms, 3),
            success=self.error_type is None,
            error_type=self.error_type,
            **self.fields,
        )

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _fresh(self) -> "AICall":
        return AICall(self._tracker, self.event_type, self.fields.get("model_used"), dict(self.fields))

    def __call__(self, fn: F) -> F:
        """Decorate `fn`: each call is timed as its own interaction."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                async with self._fresh():
                    return await fn(*args, **kwargs)

            return timed_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return fn(*args, **kwargs)

        return timed  # type: ignore[return-value]
