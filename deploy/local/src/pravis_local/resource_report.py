"""The pipeline's own services in the resource panels: the processes listening on each service's port (the
gateway, stream worker, loader, scheduler, privacy worker, dashboards, and the broker and warehouse, which
export no process metrics of their own) become `resource_sample` events, the ones the Python SDK's middleware
sends for an app (pravis_sdk.resources).

Figures come from `psutil` on the listeners' pids, summed over a service's processes (a gateway with several
workers is one service): CPU, resident memory, open descriptors and threads. The monitor writes one sample per
service every `interval_s` straight into the warehouse, validated by the `resource_sample` model like any
event: the pipeline reporting on itself through its own ingest path would stop reporting exactly when ingest
is what fails. CPU is the processes' CPU time added over the wall time between two reads, so a service's first
read, and the first after its processes changed (a restart), gives no sample. State: the last read per
service, nothing that grows.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import psutil
from pravis_schemas.events import EnrichedEvent, parse_event

from pravis_local.orphans import port_holders


@dataclass(frozen=True)
class Reading:
    at: float
    """Wall-clock seconds of the read."""
    pids: tuple[int, ...]
    cpu_seconds: float
    rss_bytes: int
    open_fds: int
    threads: int


def read_processes(pids: Iterable[int], at: float) -> Reading | None:
    """The summed figures of `pids`; None when one of them is gone or not ours to read (the next round, with
    the listeners found again, starts over)."""
    pids = tuple(sorted(pids))
    if not pids:
        return None
    cpu = rss = fds = threads = 0
    try:
        for pid in pids:
            process = psutil.Process(pid)
            with process.oneshot():
                times = process.cpu_times()
                cpu += times.user + times.system
                rss += process.memory_info().rss
                fds += process.num_fds()
                threads += process.num_threads()
    except psutil.Error:
        return None
    return Reading(at, pids, cpu, rss, fds, threads)


def sample_row(
    service: str, host: str, project: str, previous: Reading | None, current: Reading
) -> bytes | None:
    """The `events` row of a service's sample between two reads of the same processes (None otherwise)."""
    if previous is None or previous.pids != current.pids or current.at <= previous.at:
        return None
    cpu = max(current.cpu_seconds - previous.cpu_seconds, 0.0) / (current.at - previous.at) * 100
    moment = datetime.fromtimestamp(current.at, UTC)
    event = parse_event(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "resource_sample",
            "timestamp": moment.isoformat(),
            "anonymous_id": f"process:{service}@{host}",
            "host": host,
            "service": service,
            "pid": current.pids[0],
            "cpu_percent": round(cpu, 3),
            "rss_bytes": current.rss_bytes,
            "open_fds": current.open_fds,
            "threads": current.threads,
        }
    )
    return EnrichedEvent(event=event, project_id=project, received_at=moment).to_json()


class ResourceReporter:
    """Finds each service's processes by its port and reads them; keeps the last reading per service to turn
    the next into a sample."""

    def __init__(self, ports: Mapping[str, int], project: str, host: str | None = None) -> None:
        self.ports = dict(ports)
        """service -> the port its processes listen on"""
        self.project = project
        self.host = host or socket.gethostname()
        self.last: dict[str, Reading] = {}

    def read(self, at: float) -> dict[str, Reading | None]:
        """This round's reading of every service (None: nothing listens on its port, or a process is gone)."""
        held = port_holders(self.ports)
        return {
            service: read_processes([h.pid for h in held.get(service, []) if h.pid], at)
            for service in self.ports
        }

    def rows(self, readings: Mapping[str, Reading | None]) -> list[bytes]:
        """Sample rows from this round's readings."""
        rows = []
        for service, current in readings.items():
            if current is None:
                self.last.pop(service, None)
                continue
            row = sample_row(service, self.host, self.project, self.last.get(service), current)
            self.last[service] = current
            if row is not None:
                rows.append(row)
        return rows
