"""Resource samples of a server process: CPU, memory, file descriptors, threads, event-loop lag and requests
in flight, sent as a `resource_sample` event every `interval_s` seconds.

The ASGI and WSGI middleware start a sampler with the first request they serve (on by default: a server is
where resource use matters; `resources=False` turns it off). The ASGI one runs as an asyncio task on the
server's loop, which also measures how late the loop wakes a timer (event-loop lag: the time a ready request
waits for blocking code to yield); the WSGI one runs in a daemon thread. Figures come from `psutil`, so they
mean the same on Linux, macOS and Windows; `open_fds` is left out where the platform has no descriptors.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from typing import Any

import psutil

from pravis_sdk.tracking import Tracker

RESOURCE_INTERVAL_S = 15.0
"""Often enough to see a spike on a chart of minutes, rare enough to cost nothing: one small event per
process per interval."""


class ResourceSampler:
    """Reads this process's resource use; `emit()` sends a `resource_sample` with the CPU share used since the
    previous one."""

    def __init__(self, client: Tracker, service: str, host: str | None = None) -> None:
        self.client = client
        self.service = service
        self.host = host or socket.gethostname()
        self.process = psutil.Process(os.getpid())
        self.process.cpu_percent(None)  # primes the counter: the first sample covers the first interval
        self.in_flight = 0
        self._lock = threading.Lock()

    def started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def finished(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def sample(self, loop_lag_ms: float | None = None) -> dict[str, Any]:
        """The fields of one `resource_sample` event."""
        process = self.process
        with process.oneshot():
            fields = {
                "host": self.host,
                "service": self.service,
                "pid": process.pid,
                "cpu_percent": round(process.cpu_percent(None), 3),
                "rss_bytes": process.memory_info().rss,
                "threads": process.num_threads(),
                "open_fds": process.num_fds() if hasattr(process, "num_fds") else None,
                "in_flight": self.in_flight,
                "loop_lag_ms": None if loop_lag_ms is None else round(loop_lag_ms, 3),
            }
        return fields

    def emit(self, loop_lag_ms: float | None = None) -> str | None:
        # The process is the sender: a sample belongs to no user or session of the app.
        return self.client.track(
            "resource_sample",
            anonymous_id=f"process:{self.service}@{self.host}",
            **self.sample(loop_lag_ms),
        )

    async def run_on_loop(self, interval_s: float) -> None:
        """Sample forever on the running loop; the lag is how much later than asked a sleep returned."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(interval_s)
            self.emit(max(0.0, (loop.time() - asked - interval_s) * 1000))

    def start_thread(self, interval_s: float) -> threading.Thread:
        """Sample forever in a daemon thread (WSGI servers have no event loop to measure)."""

        def run() -> None:
            while True:
                time.sleep(interval_s)
                self.emit()

        thread = threading.Thread(target=run, name="pravis-resources", daemon=True)
        thread.start()
        return thread
