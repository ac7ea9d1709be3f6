"""Operator tools against a real Tansu broker and chdb warehouse: `pravis topics tail`, consumer lag, broker
and warehouse memory, rows loaded, `pravis status` and the stack monitor's /metrics."""

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pravis_local.broker import ensure_topics
from pravis_local.settings import Settings
from pravis_local.status import consumer_lag, process_figures, rows_loaded_last_minute
from pravis_rollups.clickhouse import connect, migrate
from pravis_schemas import record_of_rows, topics

from tests.support.services import Process, free_port, wait_for_http

pytestmark = pytest.mark.timeout(120)
PRAVIS = str(Path(sys.executable).parent / "pravis")


def port_of(url: str) -> int:
    return urlsplit(url).port or 0


async def produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"user-1", partition=partition)
    finally:
        await producer.stop()


async def commit(bootstrap: str, group: str, topic: str, partition: int, offset: int) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, partition)])
    await consumer.start()
    try:
        await consumer.commit({TopicPartition(topic, partition): offset})
    finally:
        await consumer.stop()


async def group_names(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {group for group, _ in await admin.list_consumer_groups()}
    finally:
        await admin.close()


@pytest.fixture
def lagging_group(kafka_bootstrap: str) -> tuple[str, str]:
    """A fresh two-partition topic with 7 records in partition 1, of which group G committed 3."""
    topic, group = f"status-{secrets.token_hex(4)}", f"status-group-{secrets.token_hex(4)}"

    async def setup() -> None:
        await ensure_topics(kafka_bootstrap, {topic: 2})
        await produce(kafka_bootstrap, topic, [b'{"n": %d}' % n for n in range(7)], partition=1)
        await commit(kafka_bootstrap, group, topic, 1, 3)

    asyncio.run(setup())
    return topic, group


def test_consumer_lag_per_group_and_partition(kafka_bootstrap: str, lagging_group: tuple[str, str]) -> None:
    topic, group = lagging_group
    lags = [item for item in asyncio.run(consumer_lag(kafka_bootstrap)) if item.group == group]
    assert [(item.topic, item.partition, item.committed, item.end, item.lag) for item in lags] == [
        (topic, 1, 3, 7, 4)
    ]


def test_process_figures_of_the_broker_and_warehouse(
    kafka_bootstrap: str, clickhouse_server: str, tmp_path: Path
) -> None:
    broker_port, warehouse_port = int(kafka_bootstrap.rsplit(":", 1)[1]), port_of(clickhouse_server)
    figures = {
        item.service: item
        for item in process_figures(
            Settings(broker_port=broker_port, warehouse_port=warehouse_port, data_dir=tmp_path)
        )
    }
    broker, warehouse = figures["broker"], figures["warehouse"]
    assert broker.pid is not None and "tansu" in " ".join(psutil.Process(broker.pid).cmdline())
    assert warehouse.pid is not None and "pravis_local.warehouse" in psutil.Process(warehouse.pid).cmdline()
    for item in (broker, warehouse):
        status = Path(f"/proc/{item.pid}/status").read_text()
        vm_rss_kib = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
        assert item.rss_bytes is not None and abs(item.rss_bytes - vm_rss_kib * 1024) < 64 * 2**20
    assert broker.disk_bytes is None
    assert warehouse.disk_bytes == 0  # tmp_path holds no chdb data


def test_rows_loaded_in_the_last_minute(clickhouse_server: str) -> None:
    url = f"{clickhouse_server}/pravis_status_{secrets.token_hex(4)}"
    migrate(url)
    assert rows_loaded_last_minute(url) == 0
    with connect(url) as client:
        client.command(
            "INSERT INTO events (event_id, event_type, project_id, timestamp, received_at) "
            "SELECT generateUUIDv4(), 'page_view', 'p', now64(3), now64(3) FROM numbers(5)"
        )
    assert rows_loaded_last_minute(url) == 5


def events_row(marker: str, n: int) -> bytes:
    return json.dumps(
        {"event_id": str(uuid.uuid4()), "event_type": "page_view", "marker": marker, "n": n}
    ).encode()


def run_tail(kafka_bootstrap: str, *args: str) -> list[str]:
    done = subprocess.run(
        [PRAVIS, "topics", "tail", *args, "--bootstrap", kafka_bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_tail_from_the_beginning_decodes_events_records_and_filters(kafka_bootstrap: str) -> None:
    marker = f"tail-{secrets.token_hex(4)}"
    first = [events_row(marker, n) for n in range(3)]
    second = [events_row(marker, n) for n in range(3, 5)] + [events_row("someone-else", 99)]
    asyncio.run(produce(kafka_bootstrap, topics.EVENTS, [record_of_rows(first), record_of_rows(second)]))

    lines = run_tail(
        kafka_bootstrap,
        topics.EVENTS,
        "--from-beginning",
        "--partition",
        "0",
        "--grep",
        marker,
        "--no-follow",
    )
    rows = [json.loads(line.split(" ", 2)[2]) for line in lines]
    assert [row["n"] for row in rows] == [0, 1, 2, 3, 4]
    assert all(line.split(" ")[1] == "user-1" and line.startswith("0:") for line in lines)
    offsets = [int(line.split(" ")[0].split(":")[1]) for line in lines]
    assert offsets[:3] == [offsets[0]] * 3 and offsets[3:] == [offsets[0] + 1] * 2

    assert (
        len(run_tail(kafka_bootstrap, topics.EVENTS, "--from-beginning", "--grep", marker, "--max", "2")) == 2
    )


def test_tail_follows_new_records_and_commits_nothing(kafka_bootstrap: str) -> None:
    marker = f"follow-{secrets.token_hex(4)}"
    groups_before = asyncio.run(group_names(kafka_bootstrap))
    follower = subprocess.Popen(
        [
            PRAVIS,
            "topics",
            "tail",
            topics.ALERTS,
            "--grep",
            marker,
            "--max",
            "1",
            "--bootstrap",
            kafka_bootstrap,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Posted until the follower has seen one: it starts at the end, skipping records older than itself.
        async def post_until_seen() -> None:
            async with asyncio.timeout(60):
                while follower.poll() is None:
                    await produce(kafka_bootstrap, topics.ALERTS, [json.dumps({"alert": marker}).encode()])
                    await asyncio.sleep(0.5)

        asyncio.run(post_until_seen())
        out, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, err
    assert json.loads(out.splitlines()[0].split(" ", 2)[2]) == {"alert": marker}
    assert asyncio.run(group_names(kafka_bootstrap)) == groups_before


def test_tail_of_a_missing_topic_or_partition_is_refused(kafka_bootstrap: str) -> None:
    for args in (["no-such-topic"], [topics.ALERTS, "--partition", "7"]):
        done = subprocess.run(
            [PRAVIS, "topics", "tail", *args, "--bootstrap", kafka_bootstrap, "--no-follow"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 1
        assert "no topic" in done.stdout or "has partitions [0]" in done.stdout


@pytest.fixture
def monitor(kafka_bootstrap: str, clickhouse_server: str, log_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {
        "PRAVIS_BROKER_PORT": kafka_bootstrap.rsplit(":", 1)[1],
        "PRAVIS_WAREHOUSE_PORT": str(port_of(clickhouse_server)),
        "PRAVIS_MONITOR_PORT": str(port),
    }
    process = Process("monitor", [sys.executable, "-m", "pravis_local.monitor"], log_dir, env).start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", process.popen)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stop()


def test_monitor_exports_lag_memory_and_health(monitor: str, lagging_group: tuple[str, str]) -> None:
    topic, group = lagging_group
    text = httpx.get(f"{monitor}/metrics", timeout=30).text
    assert f'pravis_consumer_lag{{group="{group}",partition="1",topic="{topic}"}} 4.0' in text
    assert f'pravis_consumer_committed_offset{{group="{group}",partition="1",topic="{topic}"}} 3.0' in text
    resident = {
        line.split('"')[1]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("pravis_service_resident_memory_bytes{")
    }
    assert set(resident) == {"broker", "warehouse"} and all(value > 1 << 20 for value in resident.values())
    assert 'pravis_service_up{service="broker"} 1.0' in text
    assert 'pravis_service_up{service="warehouse"} 1.0' in text
    assert 'pravis_service_up{service="gateway"} 0.0' in text  # not started in this test
    assert 'pravis_monitor_collect_failed{part="lag"} 0.0' in text


def test_pravis_status_prints_health_lag_and_memory(
    kafka_bootstrap: str, clickhouse_server: str, lagging_group: tuple[str, str], tmp_path: Path
) -> None:
    topic, group = lagging_group
    url = f"{clickhouse_server}/pravis_status_{secrets.token_hex(4)}"
    migrate(url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PRAVIS_")},
        "PRAVIS_BROKER_PORT": kafka_bootstrap.rsplit(":", 1)[1],
        "PRAVIS_WAREHOUSE_PORT": str(port_of(clickhouse_server)),
        "PRAVIS_CLICKHOUSE_URL": url,
        "COLUMNS": "250",
    }
    done = subprocess.run(
        [PRAVIS, "status"], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
    )
    out = done.stdout
    assert done.returncode == 1, out  # the gateway and the other workers are not running here
    assert re.search(r"│ broker\s+│ ok\s+│", out), out
    assert re.search(r"│ gateway\s+│ down\s+│", out), out
    assert re.search(rf"│ {group}\s+│ {topic}\s+│ 1\s+│ 3\s+│ 7\s+│ 4\s+│", out), out
    assert "rows loaded in the last minute: 0" in out


def test_the_monitor_files_the_services_resources_as_samples(
    kafka_bootstrap: str, clickhouse_server: str, gateway_url: str, log_dir: Path
) -> None:
    """The monitor reads the processes listening on the services' ports every interval and writes
    `resource_sample` rows into the warehouse: the gateway's, the broker's and warehouse's (which export no
    metrics of their own) and its own; the other services of this stack are not running: they are skipped."""
    database = f"pravis_monitor_{secrets.token_hex(4)}"
    migrate(f"{clickhouse_server}/{database}")
    quiet = {name: str(free_port()) for name in ("LOADER_HEALTH", "SCHEDULER_HEALTH", "PRIVACY_HEALTH")}
    env = {
        "PRAVIS_BROKER_PORT": kafka_bootstrap.rsplit(":", 1)[1],
        "PRAVIS_WAREHOUSE_PORT": str(port_of(clickhouse_server)),
        "PRAVIS_WAREHOUSE_DATABASE": database,
        "PRAVIS_MONITOR_PORT": str(free_port()),
        "PRAVIS_GATEWAY_PORT": str(port_of(gateway_url)),
        "PRAVIS_STREAM_WEB_PORT": str(free_port()),
        "PRAVIS_DASHBOARDS_PORT": str(free_port()),
        "PRAVIS_RESOURCE_REPORT_S": "0.2",
        **{f"PRAVIS_{name}_PORT": port for name, port in quiet.items()},
    }
    process = Process(
        "monitor-resources", [sys.executable, "-m", "pravis_local.monitor"], log_dir, env
    ).start()
    running = {"broker", "warehouse", "gateway", "monitor"}
    rows: list = []
    try:
        deadline = time.monotonic() + 60
        while {row[1] for row in rows} != running and time.monotonic() < deadline:
            with connect(f"{clickhouse_server}/{database}") as client:
                rows = client.query(
                    "SELECT DISTINCT project_id, service, cpu_percent >= 0, rss_bytes > 10000000, "
                    "open_fds > 0, threads > 0 FROM events FINAL WHERE event_type = 'resource_sample'"
                ).result_rows
            time.sleep(0.2)
    finally:
        process.stop()

    assert set(rows) == {("default", service, True, True, True, True) for service in running}
