"""A small process runner for the embedded stack.

Written here rather than taken from honcho or supervisor because the stack needs three things together that
neither gives: start in dependency order gated on each service's health check, prefixed foreground logs, and
restart of a crashed worker with backoff while the others keep running.
"""

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx
from rich.console import Console

from pravis_local.pdeathsig import guarded

HealthCheck = Callable[[], Awaitable[bool]]
console = Console(highlight=False)
_COLOURS = ["cyan", "magenta", "green", "yellow", "blue", "red"]


def http_ok(url: str) -> HealthCheck:
    async def check() -> bool:
        try:
            async with httpx.AsyncClient(timeout=2.0) as client:
                return (await client.get(url)).status_code == 200
        except httpx.HTTPError:
            return False

    return check


@dataclass
class Service:
    name: str
    argv: Sequence[str]
    health: HealthCheck
    env: dict[str, str] = field(default_factory=dict)
    start_timeout_s: float = 60.0
    after: tuple[str, ...] | None = None
    """Services that must be healthy before this one starts; None: every service listed before it."""
    restart_with: tuple[str, ...] = ()
    """Services this one keeps its own state in: when one of them exits, this one is stopped
    before it comes back and started again once it is healthy (the stream worker's changelogs live in the
    in-memory broker; a worker that outlived them would write into the new, empty broker)."""


@dataclass
class _Running:
    service: Service
    colour: str
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started: float = 0.0
    """When the current process was spawned (monotonic)."""
    released: asyncio.Event = field(default_factory=asyncio.Event)
    """Cleared while a service it restarts with is down: it stays stopped until that one is healthy again."""

    def __post_init__(self) -> None:
        self.released.set()


class Runner:
    def __init__(self, services: Sequence[Service], max_backoff_s: float = 30.0) -> None:
        self._running = [_Running(s, _COLOURS[i % len(_COLOURS)]) for i, s in enumerate(services)]
        self._width = max(len(s.name) for s in services)
        self._max_backoff_s = max_backoff_s
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()

    def pid(self, name: str) -> int | None:
        """The running process of service `name`, if it runs."""
        for entry in self._running:
            if entry.service.name == name and entry.process is not None and entry.process.returncode is None:
                return entry.process.pid
        return None

    def say(self, name: str, colour: str, line: str) -> None:
        console.print(f"[{colour}]{name:<{self._width}} |[/] ", end="")
        console.out(line, highlight=False)

    def _background(self, coroutine) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spawn(self, entry: _Running) -> None:
        service = entry.service
        entry.started = time.monotonic()
        entry.process = await asyncio.create_subprocess_exec(
            # Killed with the runner even when the runner is SIGKILLed (see pravis_local.pdeathsig).
            *guarded(service.argv),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **service.env},
            start_new_session=True,  # Ctrl-C reaches the runner only; it stops the children in order.
        )
        self._background(self._pump(entry, entry.process))

    async def _pump(self, entry: _Running, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            self.say(entry.service.name, entry.colour, raw.decode(errors="replace").rstrip())

    async def _wait_healthy(self, entry: _Running) -> None:
        deadline = time.monotonic() + entry.service.start_timeout_s
        while not await entry.service.health():
            if entry.process is None or entry.process.returncode is not None:
                raise RuntimeError(f"{entry.service.name} exited during start-up")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{entry.service.name} not healthy after {entry.service.start_timeout_s:.0f}s"
                )
            await asyncio.sleep(0.1)

    async def _supervise(self, entry: _Running) -> None:
        """Restart the service whenever it exits, with exponential backoff reset after a healthy minute."""
        while not self._stopping.is_set():
            assert entry.process is not None
            code = await entry.process.wait()
            if self._stopping.is_set():
                return
            if not entry.released.is_set():
                # Stopped by the runner because a service it restarts with went down: no crash, no backoff.
                await self._first_of(entry.released, self._stopping)
                if not self._stopping.is_set():
                    await self._respawn(entry)
                continue
            bound = await self._stop_bound(entry)
            try:
                await self._back_off(entry, code)
                if not self._stopping.is_set():
                    await self._respawn(entry)
            finally:
                for other in bound:
                    other.released.set()

    async def _back_off(self, entry: _Running, code: int) -> None:
        if time.monotonic() - entry.started > 60:
            entry.restarts = 0
        backoff = min(self._max_backoff_s, 0.5 * 2**entry.restarts)
        entry.restarts += 1
        self.say(
            "runner", "bold red", f"{entry.service.name} exited with {code}; restarting in {backoff:.1f}s"
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), backoff)

    async def _respawn(self, entry: _Running) -> None:
        await self._spawn(entry)
        try:
            await self._wait_healthy(entry)
            self.say("runner", "bold green", f"{entry.service.name} healthy again")
        except RuntimeError as exc:
            self.say("runner", "bold red", str(exc))

    async def _stop_bound(self, entry: _Running) -> list[_Running]:
        """Stop the services that restart with `entry` (held until it is healthy again); return them."""
        bound = [other for other in self._running if entry.service.name in other.service.restart_with]
        for other in bound:
            other.released.clear()
            self.say(
                "runner",
                "bold yellow",
                f"stopping {other.service.name}: it restarts with {entry.service.name}",
            )
        await asyncio.gather(*(self._terminate(other) for other in bound))
        return bound

    @staticmethod
    async def _first_of(*events: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(event.wait()) for event in events]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()

    async def start(self) -> None:
        """Start every service once its dependencies are healthy; independent services start together."""
        names = [entry.service.name for entry in self._running]
        healthy = {name: asyncio.Event() for name in names}

        async def bring_up(position: int, entry: _Running) -> None:
            after = entry.service.after if entry.service.after is not None else names[:position]
            for name in after:
                await healthy[name].wait()
            began = time.monotonic()
            await self._spawn(entry)
            await self._wait_healthy(entry)
            self.say("runner", "bold", f"{entry.service.name} healthy in {time.monotonic() - began:.2f}s")
            healthy[entry.service.name].set()

        # A TaskGroup cancels the services still waiting when one fails to start.
        async with asyncio.TaskGroup() as group:
            for position, entry in enumerate(self._running):
                group.create_task(bring_up(position, entry))
        for entry in self._running:
            self._background(self._supervise(entry))

    async def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        for entry in reversed(self._running):
            await self._terminate(entry, timeout_s)

    async def _terminate(self, entry: _Running, timeout_s: float = 10.0) -> None:
        process = entry.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            process.kill()
            await process.wait()
        self.say("runner", "bold", f"{entry.service.name} stopped ({process.returncode})")

    async def run_until_signalled(self, on_ready: Callable[[], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        stop_requested = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop_requested.set)
        try:
            await self.start()
            if on_ready:
                on_ready()
            await stop_requested.wait()
        finally:
            await self.stop()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
