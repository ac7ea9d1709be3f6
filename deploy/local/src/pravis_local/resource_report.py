"""The pipeline's own services in the resource panels: their Prometheus `/metrics` become `resource_sample`
events, the ones the Python SDK's middleware sends for an app (pravis_sdk.resources).

Every Python service of the stack exports prometheus-client's process collector (`process_cpu_seconds_total`,
`process_resident_memory_bytes`, `process_open_fds`); the monitor reads them every `interval_s` and writes one
sample per service straight into the warehouse, validated by the `resource_sample` model like any event: the
pipeline reporting on itself through its own ingest path would stop reporting exactly when ingest is what
fails. CPU is the counter's increase over the wall time between two reads, so a service's first read (and the
first after a restart, whose counter went down) gives no sample. State: the last read per service, nothing
that grows.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pravis_schemas.events import EnrichedEvent, parse_event
from prometheus_client.parser import text_string_to_metric_families

PROCESS_METRICS = {
    "process_cpu_seconds": "cpu_seconds",
    "process_resident_memory_bytes": "rss_bytes",
    "process_open_fds": "open_fds",
}
"""prometheus-client's process collector (the `_total` suffix is dropped by the parser's family names)."""


@dataclass(frozen=True)
class Reading:
    at: float
    """Wall-clock seconds of the read."""
    cpu_seconds: float
    rss_bytes: int
    open_fds: int | None


def read_metrics(text: str, at: float) -> Reading | None:
    """The process figures of one `/metrics` body; None when it has no process collector."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        name = PROCESS_METRICS.get(family.name)
        if name is not None and family.samples:
            found[name] = family.samples[0].value
    if "cpu_seconds" not in found or "rss_bytes" not in found:
        return None
    fds = found.get("open_fds")
    return Reading(at, found["cpu_seconds"], int(found["rss_bytes"]), None if fds is None else int(fds))


def sample_row(
    service: str, host: str, project: str, previous: Reading | None, current: Reading
) -> bytes | None:
    """The `events` row of a service's sample between two reads (None without a usable previous read)."""
    if previous is None or current.at <= previous.at or current.cpu_seconds < previous.cpu_seconds:
        return None
    cpu = (current.cpu_seconds - previous.cpu_seconds) / (current.at - previous.at) * 100
    moment = datetime.fromtimestamp(current.at, UTC)
    event = parse_event(
        {
            "event_id": str(uuid.uuid4()),
            "event_type": "resource_sample",
            "timestamp": moment.isoformat(),
            "anonymous_id": f"process:{service}@{host}",
            "host": host,
            "service": service,
            "cpu_percent": round(cpu, 3),
            "rss_bytes": current.rss_bytes,
            "open_fds": current.open_fds,
        }
    )
    return EnrichedEvent(event=event, project_id=project, received_at=moment).to_json()


class ResourceReporter:
    """Reads each service's `/metrics`; keeps the last reading per service to turn the next into a sample."""

    def __init__(self, targets: dict[str, str], project: str, host: str | None = None) -> None:
        self.targets = targets
        """service -> its `/metrics` URL"""
        self.project = project
        self.host = host or socket.gethostname()
        self.last: dict[str, Reading] = {}

    def rows(self, bodies: dict[str, str | None], at: float) -> list[bytes]:
        """Sample rows from this round's `/metrics` bodies (None: the service did not answer)."""
        rows = []
        for service, body in bodies.items():
            current = read_metrics(body, at) if body is not None else None
            if current is None:
                self.last.pop(service, None)
                continue
            row = sample_row(service, self.host, self.project, self.last.get(service), current)
            self.last[service] = current
            if row is not None:
                rows.append(row)
        return rows
