"""Real services for tests and benchmarks (dev-only, never imported by runtime code): Kafka and ClickHouse
from the environment, Docker, or embedded on free ports.

Order of preference: `PRAVIS_KAFKA_BOOTSTRAP` / `PRAVIS_CLICKHOUSE_URL` when set; testcontainers (Apache
Kafka, ClickHouse) when a Docker engine answers; otherwise the embedded Tansu broker and chdb warehouse.
"""

import asyncio
import contextlib
import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
from pravis_local.broker import broker_command, default_partitions, ensure_topics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
"""Apache Kafka 3.6 (Confluent's build) in KRaft mode, the image testcontainers' Kafka module drives."""
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:25.8"


def docker_unavailable_reason() -> str | None:
    """None when a Docker engine answers (fixtures then use Kafka and ClickHouse containers), else why not."""
    try:
        import docker

        docker.from_env(timeout=2).ping()
        return None
    except Exception as exc:
        return f"no Docker engine ({type(exc).__name__}: {str(exc)[:120]})"


def docker_available() -> bool:
    return docker_unavailable_reason() is None


def wait_for(condition: Callable[[], bool], timeout_s: float = 45.0, what: str = "condition") -> float:
    """Poll until `condition()` holds (an exception counts as not yet: a service may be restarting); return
    the seconds it took."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        with contextlib.suppress(Exception):
            if condition():
                return time.monotonic() - began
        time.sleep(0.1)
    raise TimeoutError(f"{what} not reached within {timeout_s}s")


async def eventually(check: Callable[[], object], timeout_s: float = 45.0, what: str = "") -> float:
    """`wait_for` for tests that run on an event loop: `check` runs in a thread (a blocking query must not
    stall the loop it shares with the code under test) and may return a bool or an awaitable of one; an
    exception counts as not yet. Returns the seconds it took."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        with contextlib.suppress(Exception):
            result = await asyncio.to_thread(check)
            if inspect.isawaitable(result):
                result = await result
            if result:
                return time.monotonic() - began
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{what or check.__doc__ or check} not reached within {timeout_s}s")


def read_response_until_closed(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names) and body of the one response a raw HTTP/1.1 client gets, read
    until the server closes the connection; the socket's timeout bounds each read, so one left open fails."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def wait_for_http(url: str, process: subprocess.Popen | None = None, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} not healthy after {timeout_s}s")


def interrupt(popen: subprocess.Popen, timeout_s: float) -> None:
    """SIGINT a child that is still running, and SIGKILL it if it has not ended within `timeout_s`."""
    if popen.poll() is not None:
        return
    popen.send_signal(signal.SIGINT)
    try:
        popen.wait(timeout_s)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


class Process:
    """A child process with its output in a log file, stopped (SIGINT, then SIGKILL) on exit."""

    def __init__(
        self, name: str, argv: Sequence[str], log_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name, self.argv, self.env = (
            name,
            list(argv),
            {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Process":
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.popen is not None:
            interrupt(self.popen, timeout_s)

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def kafka_bootstrap(log_dir: Path, events_partitions: int = 3) -> Iterator[str]:
    if env := os.environ.get("PRAVIS_KAFKA_BOOTSTRAP"):
        bootstrap, stop = env, None
    elif docker_available():
        from testcontainers.community.kafka import KafkaContainer

        container = KafkaContainer(KAFKA_IMAGE).with_kraft().start()
        bootstrap, stop = container.get_bootstrap_server(), container.stop
    else:
        port = free_port()
        broker = Process("broker", broker_command("127.0.0.1", port), log_dir).start()
        bootstrap, stop = f"127.0.0.1:{port}", broker.stop
    try:
        asyncio.run(ensure_topics(bootstrap, default_partitions(events_partitions)))
        yield bootstrap
    finally:
        if stop:
            stop()


@contextlib.contextmanager
def clickhouse_server_url(data_dir: Path, log_dir: Path) -> Iterator[str]:
    """URL of a ClickHouse HTTP server, without a database in the path (callers choose their own)."""
    if env := os.environ.get("PRAVIS_CLICKHOUSE_URL"):
        yield env.rsplit("/", 1)[0] if env.count("/") > 2 else env
        return
    if docker_available():
        from testcontainers.community.clickhouse import ClickHouseContainer

        with ClickHouseContainer(CLICKHOUSE_IMAGE) as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(8123)
            yield f"http://{container.username}:{container.password}@{host}:{port}"
        return
    with embedded_warehouse(data_dir, log_dir) as url:
        yield url


@contextlib.contextmanager
def embedded_warehouse(
    data_dir: Path, log_dir: Path, env: dict[str, str] | None = None, name: str = "warehouse"
) -> Iterator[str]:
    """The embedded warehouse on a free port, its settings (PRAVIS_WAREHOUSE_*) from `env`; yields its URL
    without credentials or database."""
    port = free_port()
    warehouse = Process(
        name,
        [sys.executable, "-m", "pravis_local.warehouse", "--port", str(port), "--data-dir", str(data_dir)],
        log_dir,
        env,
    ).start()
    try:
        wait_for_http(f"http://127.0.0.1:{port}/ping", warehouse.popen)
        yield f"http://127.0.0.1:{port}"
    finally:
        warehouse.stop()


async def read_topic(bootstrap: str, topic: str, timeout_s: float = 10.0) -> list[bytes]:
    """Every value currently in `topic`, read from the beginning without a consumer group."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # loads metadata of every topic, so partitions_for_topic knows this one
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        values: list[bytes] = []
        async with asyncio.timeout(timeout_s):
            while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    values.extend(r.value for r in records)
        return values
    finally:
        await consumer.stop()
