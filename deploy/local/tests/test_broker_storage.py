"""The broker of `pravis up` on each storage engine the shipped Tansu has (PRAVIS_BROKER_STORAGE): on `s3://`
the broker's memory stays flat; on `memory://` (the default) every record costs broker memory and a restart
loses them all."""

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pravis_local.broker import ensure_topics
from pravis_local.settings import Settings
from pravis_local.stack import services

from tests.support.services import Process, free_port, wait_for_http

pytestmark = pytest.mark.timeout(240)
RECORDS = 100_000
TOPIC = "storage-check"


@pytest.fixture(scope="module")
def s3_env(log_dir: Path) -> Iterator[dict[str, str]]:
    """A local S3 server (moto's: it keeps objects in its own memory, so it outlives the broker as a disk
    would; docs/reliability.md measures a disk-backed one) with the bucket Tansu writes to."""
    port = free_port()
    moto = Process("storage-s3", [str(Path(sys.executable).parent / "moto_server"), "-p", str(port)], log_dir)
    moto.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/", moto.popen)
        httpx.put(f"{url}/tansu").raise_for_status()
        yield {
            "AWS_ENDPOINT": url,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "pravis",
            "AWS_SECRET_ACCESS_KEY": "pravis",
            "AWS_REGION": "eu-west-2",
            "AWS_DEFAULT_REGION": "eu-west-2",
        }
    finally:
        moto.stop()


def resident_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


async def produce(bootstrap: str, count: int) -> None:
    """`count` numbered records acked by the broker (acks=all), many in flight, as the gateway sends them."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        pending = []
        for n in range(count):
            pending.append(await producer.send(TOPIC, b"%d " % n + b"x" * 220, partition=n % 2))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending = []
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def readable(bootstrap: str) -> set[int]:
    """The record numbers that can be read back from the beginning."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(TOPIC, p) for p in (0, 1)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen: set[int] = set()
        idle_polls = 0
        # Read until three polls in a row bring nothing new (each waits up to 1 s).
        while idle_polls < 3:
            batch = await consumer.getmany(timeout_ms=1000)
            before = len(seen)
            seen.update(int(r.value.split(b" ", 1)[0]) for records in batch.values() for r in records)
            idle_polls = idle_polls + 1 if len(seen) == before else 0
        return seen
    finally:
        await consumer.stop()


def spans(missing: set[int]) -> str:
    by_partition = {p: sorted(n for n in missing if n % 2 == p) for p in (0, 1)}
    found = {p: (len(ns), ns[0], ns[-1]) for p, ns in by_partition.items() if ns}
    return f"{len(missing)} records unreadable; per partition (count, first, last): {found}"


def start_broker(settings: Settings, env: dict[str, str], log_dir: Path, name: str) -> Process:
    broker = next(service for service in services(settings) if service.name == "broker")
    process = Process(name, broker.argv, log_dir, env).start()
    bootstrap = f"127.0.0.1:{settings.broker_port}"
    asyncio.run(ensure_topics(bootstrap, {TOPIC: 2}))
    return process


def test_s3_broker_memory_stays_flat(s3_env: dict[str, str], log_dir: Path, tmp_path: Path) -> None:
    """Records on s3:// cost the broker no memory. Whether every acked record can be read back, and survives a
    kill -9, is not asserted here: on Tansu 0.6 it does not hold under concurrent produce (measured in
    docs/reliability.md), and reading back what is missing only waits out timeouts."""
    settings = Settings(broker_port=free_port(), broker_storage="s3://tansu/", data_dir=tmp_path)
    bootstrap = f"127.0.0.1:{settings.broker_port}"
    broker = start_broker(settings, s3_env, log_dir, "storage-s3-broker")
    try:
        assert broker.popen is not None
        before = resident_mib(broker.popen.pid)
        asyncio.run(produce(bootstrap, RECORDS))
        growth = resident_mib(broker.popen.pid) - before
    finally:
        broker.stop()

    print(f"s3: broker RSS +{growth:.1f} MiB for {RECORDS:,} records")
    assert growth < 8, f"s3:// broker grew {growth:.1f} MiB"


def test_memory_broker_grows_with_every_record_and_loses_them_on_a_kill(
    log_dir: Path, tmp_path: Path
) -> None:
    settings = Settings(broker_port=free_port(), data_dir=tmp_path)
    bootstrap = f"127.0.0.1:{settings.broker_port}"
    broker = start_broker(settings, {}, log_dir, "storage-memory-broker")
    try:
        assert broker.popen is not None
        before = resident_mib(broker.popen.pid)
        asyncio.run(produce(bootstrap, RECORDS))
        growth = resident_mib(broker.popen.pid) - before
        missing = set(range(RECORDS)) - asyncio.run(readable(bootstrap))
        assert not missing, spans(missing)

        broker.kill()
        broker = start_broker(settings, {}, log_dir, "storage-memory-broker-restarted")
        survivors = asyncio.run(readable(bootstrap))
    finally:
        broker.stop()

    print(
        f"memory: broker RSS +{growth:.1f} MiB for {RECORDS:,} records; {len(survivors):,} survived kill -9"
    )
    assert survivors == set()
    # 228-byte records cost the memory engine ~240 MiB per million (docs/reliability.md).
    assert growth > 12, f"memory:// broker grew only {growth:.1f} MiB"


def test_stack_broker_uses_the_storage_setting() -> None:
    argv = next(s for s in services(Settings(broker_storage="s3://bucket/")) if s.name == "broker").argv
    assert argv[argv.index("--storage-engine") + 1] == "s3://bucket/"
    default = next(s for s in services(Settings()) if s.name == "broker").argv
    assert default[default.index("--storage-engine") + 1] == "memory://tansu/"


def test_the_shipped_broker_has_no_other_storage_engine(tmp_path: Path) -> None:
    """Why retention cannot bound memory here: the slatedb engine (the one with retention.ms and compaction)
    and sqlite are not compiled into the shipped binary."""
    for url in ("slate://tansu/", f"sqlite://{tmp_path}/tansu.db"):
        settings = Settings(broker_port=free_port(), broker_storage=url)
        argv = next(s for s in services(settings) if s.name == "broker").argv
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert done.returncode != 0
        assert (
            "UnsupportedStorageUrl" in done.stderr + done.stdout
            or "FeatureNotEnabled" in done.stderr + done.stdout
        )
