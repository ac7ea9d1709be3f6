"""What `pravis status` and the stack monitor's /metrics report: each service's health, consumer lag per group
and partition as the broker sees it, the broker's and warehouse's memory and disk, rows loaded in the last
minute.

Lag is read from the broker (committed offset against the partition's end), not from the consumers: a consumer
that is stuck or dead cannot report its own lag, and that is when lag matters. Tansu 0.6 answers ListGroups
and a group consumer's OffsetFetch, but not the admin client's OffsetFetch for a whole group (its response
fails to decode), so committed offsets are asked per partition, through a consumer that joins no group and
commits nothing."""

import asyncio
import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pravis_rollups.clickhouse import connect

from pravis_local.orphans import port_holders
from pravis_local.settings import Settings


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


@dataclass(frozen=True)
class ProcessFigures:
    service: str
    pid: int | None
    rss_bytes: int | None
    disk_bytes: int | None
    """Bytes of the service's data on disk; None where it keeps none (the broker on memory://)."""


@dataclass(frozen=True)
class Health:
    service: str
    url: str
    ok: bool
    detail: str


def health_urls(settings: Settings) -> dict[str, str]:
    """Where each service of the embedded stack answers its health check (the broker: its Kafka port)."""
    host = settings.host
    return {
        "broker": f"kafka://{host}:{settings.broker_port}",
        "warehouse": f"http://{host}:{settings.warehouse_port}/ping",
        "loader": f"http://{host}:{settings.loader_health_port}/healthz",
        "scheduler": f"http://{host}:{settings.scheduler_health_port}/healthz",
        "privacy": f"http://{host}:{settings.privacy_health_port}/healthz",
        "stream": f"http://{host}:{settings.stream_web_port}/healthz",
        "gateway": f"http://{host}:{settings.gateway_port}/readyz",
        "dashboards": f"http://{host}:{settings.dashboards_port}/healthz",
        "monitor": f"http://{host}:{settings.monitor_port}/healthz",
    }


async def _broker_health(bootstrap: str, timeout_s: float, **options: Any) -> tuple[bool, str]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000), **options
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            return True, f"{len(await admin.list_topics())} topics"
    except Exception as exc:
        return False, type(exc).__name__
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


async def health(urls: Mapping[str, str], timeout_s: float = 2.0) -> list[Health]:
    async with httpx.AsyncClient(timeout=timeout_s) as client:

        async def check(service: str, url: str) -> Health:
            if url.startswith("kafka://"):
                ok, detail = await _broker_health(url.removeprefix("kafka://"), timeout_s)
                return Health(service, url, ok, detail)
            try:
                response = await client.get(url)
                return Health(service, url, response.status_code == 200, str(response.status_code))
            except httpx.HTTPError as exc:
                return Health(service, url, False, type(exc).__name__)

        return list(await asyncio.gather(*(check(name, url) for name, url in urls.items())))


async def consumer_lag(bootstrap: str, **options: Any) -> list[PartitionLag]:
    """Committed offset and end offset of every partition each consumer group has committed on."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **options)
    await admin.start()
    try:
        groups = sorted(group for group, _protocol in await admin.list_consumer_groups())
    finally:
        await admin.close()
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await reader.start()
    try:
        partitions = [
            TopicPartition(topic, partition)
            for topic in sorted(await reader.topics())
            for partition in sorted(reader.partitions_for_topic(topic) or ())
        ]
        ends = await reader.end_offsets(partitions) if partitions else {}
    finally:
        await reader.stop()
    lags = []
    for group in groups:
        # group_id only addresses the group's coordinator: assign() never joins the group; nothing commits.
        probe = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **options
        )
        probe.assign(partitions)
        await probe.start()
        try:
            committed = await asyncio.gather(*(probe.committed(tp) for tp in partitions))
        finally:
            await probe.stop()
        lags.extend(
            PartitionLag(group, tp.topic, tp.partition, offset, ends[tp])
            for tp, offset in zip(partitions, committed, strict=True)
            if offset is not None
        )
    return lags


def directory_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).lstat().st_size
    return total


def process_figures(settings: Settings) -> list[ProcessFigures]:
    """RSS of the local processes listening on the broker's and warehouse's ports, and their data on disk."""
    held = port_holders({"broker": settings.broker_port, "warehouse": settings.warehouse_port})
    figures = []
    for service in ("broker", "warehouse"):
        holders = held.get(service, [])
        pid = holders[0].pid if holders and holders[0].pid else None
        rss = None
        if pid is not None:
            with contextlib.suppress(psutil.Error):
                rss = psutil.Process(pid).memory_info().rss
        disk = directory_bytes(settings.chdb_path) if service == "warehouse" else None
        figures.append(ProcessFigures(service, pid, rss, disk))
    return figures


ROWS_LAST_MINUTE = "SELECT count() FROM events WHERE inserted_at >= now64(3) - INTERVAL 60 SECOND"


def rows_loaded_last_minute(clickhouse_url: str) -> int:
    with connect(clickhouse_url) as client:
        return int(client.command(ROWS_LAST_MINUTE))
