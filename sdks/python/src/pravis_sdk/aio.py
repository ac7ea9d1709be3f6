"""`AsyncClient`: the same queue, batching and retry matrix as `Client`, delivered by an asyncio task.

`track()` and friends stay plain (non-blocking) methods, callable from the event loop or any thread;
`await client.flush()` and `await client.shutdown()` (or `async with AsyncClient(...)`) drive delivery;
`await client.get_surveys(...)` fetches a user's surveys as `Client.get_surveys` does.
The task starts with the first event queued inside a running loop, or with `await client.start()`.
"""

import asyncio
import contextlib
import time
from typing import Any

import httpx

from pravis_sdk.delivery import GIVE_UP, Outcome, Reply, Send, Sleep, deliver, encode_body
from pravis_sdk.policy import MAX_BATCH_BYTES, MAX_BATCH_EVENTS
from pravis_sdk.surveys import SURVEYS_PATH, UNANSWERED, survey_params, surveys_in
from pravis_sdk.tracking import DEFAULT_HOST, Tracker


class AsyncClient(Tracker):
    def __init__(
        self,
        api_key: str,
        host: str = DEFAULT_HOST,
        *,
        shutdown_timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        **options: Any,
    ) -> None:
        super().__init__(api_key, host, **options)
        self.shutdown_timeout = shutdown_timeout
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._wakeup: asyncio.Event | None = None
        self._settled: asyncio.Event | None = None
        self._stopping = False
        self._deadline: float | None = None

    async def start(self) -> None:
        if self._task is None:
            self._start_soon()

    async def get_surveys(
        self, user_id: str | None = None, anonymous_id: str | None = None
    ) -> list[dict[str, Any]]:
        """`Client.get_surveys` without blocking the loop: the surveys this user should see now, [] when the
        gateway cannot answer. Record them with the same `survey_shown` / `survey_answered` calls."""
        await self.start()
        assert self._http is not None
        params = survey_params(user_id, anonymous_id, self.user_id, self.anonymous_id)
        try:
            response = await self._http.get(
                self.host + SURVEYS_PATH, params=params, headers={"X-API-Key": self.api_key}
            )
            return surveys_in(response)
        except UNANSWERED:
            return []

    def track(self, event_type: str, properties: Any = None, **kwargs: Any) -> str | None:
        if self._task is None:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop()
                self._start_soon()
        return super().track(event_type, properties, **kwargs)

    def _start_soon(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._http = httpx.AsyncClient(timeout=self.timeout, transport=self._transport)
        self._wakeup, self._settled = asyncio.Event(), asyncio.Event()
        self._task = self._loop.create_task(self._run(), name="pravis-consumer")

    def _wake(self) -> None:
        if self._loop is None or self._wakeup is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._wakeup.set()
        else:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    async def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued so far; False if `timeout` passed first."""
        await self.start()
        assert self._settled is not None
        mark = self.buffer.mark()
        self._wake()
        try:
            async with asyncio.timeout(timeout):
                while not self.buffer.settled_past(mark):
                    self._settled.clear()
                    await self._settled.wait()
        except TimeoutError:
            return False
        return True

    async def shutdown(self) -> None:
        """Send what is queued (within `shutdown_timeout`), stop, report leftovers as dropped."""
        if self._stopping:
            return
        self._stopping = True
        self._deadline = time.monotonic() + self.shutdown_timeout
        if self._task is not None:
            self._wake()
            try:
                async with asyncio.timeout(self.shutdown_timeout + 1.0):
                    await self._task
            except TimeoutError:
                self._task.cancel()
        left = self.buffer.drain()
        if left:
            self.buffer.abandon(left, "shutdown", "client shut down before these events could be sent")
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> "AsyncClient":
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    async def _run(self) -> None:
        assert self._wakeup is not None and self._settled is not None
        while True:
            if not self._stopping and len(self.buffer) < self.flush_at:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.flush_interval)
            self._wakeup.clear()
            while not self._past_deadline() and (
                batch := self.buffer.take(MAX_BATCH_EVENTS, MAX_BATCH_BYTES)
            ):
                self.buffer.settle(await self._deliver(batch))
                self._settled.set()
            self._settled.set()
            if self._stopping and (not len(self.buffer) or self._past_deadline()):
                return

    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    async def _deliver(self, batch: list[bytes]) -> Outcome:
        steps = deliver(batch, self.policy)
        step = next(steps)
        try:
            while True:
                if isinstance(step, Send):
                    step = steps.send(await self._post(step))
                else:
                    assert isinstance(step, Sleep)
                    step = steps.send(None if await self._sleep(step.seconds) else GIVE_UP)
        except StopIteration as done:
            return done.value

    async def _sleep(self, seconds: float) -> bool:
        """Wait `seconds`; False (give up) if a shutdown deadline comes first."""
        end = time.monotonic() + seconds
        while (remaining := end - time.monotonic()) > 0:
            if self._deadline is not None and end > self._deadline:
                return False
            assert self._wakeup is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            self._wakeup.clear()
        return True

    async def _post(self, step: Send) -> Reply:
        assert self._http is not None
        body = encode_body(step.items, compress=self.gzip)
        try:
            response = await self._http.post(self.url, content=body, headers=self.headers)
        except httpx.HTTPError as exc:
            return Reply(None, error=f"{type(exc).__name__}: {exc}")
        return Reply(response.status_code, response.content, response.headers.get("retry-after"))
