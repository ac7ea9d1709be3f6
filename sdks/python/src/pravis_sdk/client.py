"""`Client`: queue events from any thread; one daemon consumer thread batches and delivers them.

The consumer sends when `flush_at` events wait or `flush_interval` seconds passed, retries per the retry
matrix (`policy.py`) with interruptible sleeps, and on shutdown (explicit, or at interpreter exit) sends
what is left within `shutdown_timeout`; anything it could not send is reported as dropped.
"""

import atexit
import logging
import threading
import time
import weakref
from typing import Any

import httpx

from pravis_sdk.delivery import GIVE_UP, Reply, Send, Sleep, deliver, encode_body
from pravis_sdk.policy import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from pravis_sdk.surveys import SURVEYS_PATH, UNANSWERED, survey_params, surveys_in
from pravis_sdk.tracking import DEFAULT_HOST, Tracker

log = logging.getLogger("pravis_sdk")


class Client(Tracker):
    """Thread-safe analytics client. `with Client(key, host) as client:` shuts it down on exit."""

    def __init__(
        self,
        api_key: str,
        host: str = DEFAULT_HOST,
        *,
        shutdown_timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api_key, host, **options)
        self.shutdown_timeout = shutdown_timeout
        self._http = httpx.Client(timeout=self.timeout, transport=transport)
        self._flush_requested = False
        self._stopping = False
        self._deadline: float | None = None
        self._consumer = threading.Thread(target=self._run, name="pravis-consumer", daemon=True)
        self._consumer.start()
        atexit.register(_shutdown_at_exit, weakref.ref(self))

    def get_surveys(
        self, user_id: str | None = None, anonymous_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The surveys the gateway says this user should see now (at most one, with its questions), for a
        server-rendered page; [] when the gateway cannot answer, so a page never fails over a survey."""
        params = survey_params(user_id, anonymous_id, self.user_id, self.anonymous_id)
        try:
            response = self._http.get(
                self.host + SURVEYS_PATH, params=params, headers={"X-API-Key": self.api_key}
            )
            return surveys_in(response)
        except UNANSWERED:
            return []

    def _wake(self) -> None:
        with (
            self.buffer.cond
        ):  # `_due` sees `flush_at` reached; a flag here would outlive the batch it was for
            self.buffer.cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued so far; block until it is settled. False if `timeout` passed first."""
        mark = self.buffer.mark()
        end = None if timeout is None else time.monotonic() + timeout
        with self.buffer.cond:
            self._flush_requested = True
            self.buffer.cond.notify_all()
            while not self.buffer.settled_past(mark):
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                if not self._consumer.is_alive():
                    return False
                self.buffer.cond.wait(remaining if remaining is not None else 1.0)
        return True

    def shutdown(self) -> None:
        """Send what is queued (within `shutdown_timeout`), stop the consumer, report leftovers as dropped."""
        if self._stopping:
            return
        with self.buffer.cond:
            self._stopping = True
            self._deadline = time.monotonic() + self.shutdown_timeout
            self.buffer.cond.notify_all()
        self._consumer.join(self.shutdown_timeout + 1.0)
        left = self.buffer.drain()
        if left:
            self.buffer.abandon(left, "shutdown", "client shut down before these events could be sent")
        self._http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def _run(self) -> None:
        next_flush = time.monotonic() + self.flush_interval
        while True:
            with self.buffer.cond:
                while not self._due(next_flush):
                    now = time.monotonic()
                    if now >= next_flush:  # interval passed with nothing queued
                        next_flush = now + self.flush_interval
                    self.buffer.cond.wait(next_flush - now)
                self._flush_requested = False
            while not self._past_deadline() and (
                batch := self.buffer.take(MAX_BATCH_EVENTS, MAX_BATCH_BYTES)
            ):
                self.buffer.settle(self._deliver(batch))
            next_flush = time.monotonic() + self.flush_interval
            if self._stopping and (not len(self.buffer) or self._past_deadline()):
                return

    def _due(self, next_flush: float) -> bool:
        """Whether to send now: stopping, flush() called, `flush_at` reached or the interval passed."""
        queued = len(self.buffer)
        return (
            self._stopping
            or self._flush_requested
            or queued >= self.flush_at
            or (queued > 0 and time.monotonic() >= next_flush)
        )

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _deliver(self, batch: list[bytes]) -> Any:
        steps = deliver(batch, self.policy)
        step = next(steps)
        try:
            while True:
                if isinstance(step, Send):
                    step = steps.send(self._post(step))
                else:
                    assert isinstance(step, Sleep)
                    step = steps.send(GIVE_UP if not self._sleep(step.seconds) else None)
        except StopIteration as done:
            return done.value

    def _sleep(self, seconds: float) -> bool:
        """Wait `seconds` unless shutting down would pass the deadline first; False means give up."""
        end = time.monotonic() + seconds
        with self.buffer.cond:
            while (remaining := end - time.monotonic()) > 0:
                if self._deadline is not None and end > self._deadline:
                    return False
                self.buffer.cond.wait(remaining)
        return True

    def _post(self, step: Send) -> Reply:
        body = encode_body(step.items, compress=self.gzip)
        try:
            response = self._http.post(self.url, content=body, headers=self.headers)
        except httpx.HTTPError as exc:
            return Reply(None, error=f"{type(exc).__name__}: {exc}")
        return Reply(response.status_code, response.content, response.headers.get("retry-after"))


def _shutdown_at_exit(ref: "weakref.ref[Client]") -> None:
    client = ref()
    if client is not None:
        client.shutdown()
