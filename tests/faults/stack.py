"""A fault-injection stack of local processes (Tansu broker, chdb warehouse, loader, gateway) on free ports,
each of which a test can kill -9, stop and restart, plus a steady load posted through the gateway."""

import asyncio
import secrets
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import httpx
from pravis_local.broker import broker_command, default_partitions, ensure_topics
from pravis_rollups.clickhouse import connect
from prometheus_client.parser import text_string_to_metric_families

from tests.support import services


class Stack:
    """`durable=True` runs the broker on Tansu's s3:// storage against a local S3 server (moto), which
    outlives the broker process, as a durable Kafka's disks would."""

    ENV: ClassVar[dict[str, str]] = {
        "PRAVIS_LOADER_BATCH_SECONDS": "0.2",
        "PRAVIS_LOADER_RETRY_MAX_SECONDS": "1",
        "PRAVIS_KAFKA_ACK_TIMEOUT_S": "2",
        "PRAVIS_RETRY_AFTER_S": "1",
    }
    """Timings shortened so the suite stays fast (docs/reliability.md lists the defaults)."""

    def __init__(self, root: Path, log_dir: Path, durable: bool = False) -> None:
        self.log_dir = log_dir
        self.durable = durable
        name = "faults-durable" if durable else "faults"
        self.data_dir = root / "data"
        self.chdb_dir = root / "chdb"
        self.broker_port, self.warehouse_port = services.free_port(), services.free_port()
        self.gateway_port, self.loader_port = services.free_port(), services.free_port()
        self.bootstrap = f"127.0.0.1:{self.broker_port}"
        self.clickhouse_url = f"http://127.0.0.1:{self.warehouse_port}/pravis_faults"
        self.gateway_url = f"http://127.0.0.1:{self.gateway_port}"
        env = {
            **self.ENV,
            "PRAVIS_KAFKA_BOOTSTRAP": self.bootstrap,
            "PRAVIS_CLICKHOUSE_URL": self.clickhouse_url,
            "PRAVIS_DATA_DIR": str(self.data_dir),
            "PRAVIS_LOADER_GROUP_ID": f"faults-{secrets.token_hex(3)}",
            "PRAVIS_LOADER_HEALTH_PORT": str(self.loader_port),
        }
        self.s3: services.Process | None = None
        storage = "memory://tansu/"
        if durable:
            s3_port = services.free_port()
            self.s3_url = f"http://127.0.0.1:{s3_port}"
            moto = Path(sys.executable).parent / "moto_server"
            self.s3 = services.Process(f"{name}-s3", [str(moto), "-p", str(s3_port)], log_dir)
            env |= {
                "AWS_ENDPOINT": self.s3_url,
                "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": "pravis",
                "AWS_SECRET_ACCESS_KEY": "pravis",
                "AWS_REGION": "eu-west-2",
                "AWS_DEFAULT_REGION": "eu-west-2",
            }
            storage = "s3://tansu/"
        self.broker = services.Process(
            f"{name}-broker", broker_command("127.0.0.1", self.broker_port, storage), log_dir, env
        )
        self.warehouse = services.Process(
            f"{name}-warehouse",
            [
                *(sys.executable, "-m", "pravis_local.warehouse"),
                *("--port", str(self.warehouse_port), "--data-dir", str(self.chdb_dir)),
            ],
            log_dir,
            env,
        )
        self.loader = services.Process(
            f"{name}-loader", [sys.executable, "-m", "pravis_rollups.loader"], log_dir, env
        )
        self.gateway = services.Process(
            f"{name}-gateway",
            [sys.executable, "-m", "pravis_gateway", "--port", str(self.gateway_port)],
            log_dir,
            env,
        )

    def start_broker(self) -> None:
        if self.s3 is not None and (self.s3.popen is None or self.s3.popen.poll() is not None):
            self.s3.start()
            services.wait_for(lambda: httpx.get(self.s3_url, timeout=1).status_code < 500, what="S3 server")
            import boto3

            s3 = boto3.client(
                "s3",
                endpoint_url=self.s3_url,
                aws_access_key_id="pravis",
                aws_secret_access_key="pravis",
                region_name="eu-west-2",
            )
            s3.create_bucket(Bucket="tansu", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"})
        self.broker.start()
        asyncio.run(ensure_topics(self.bootstrap, default_partitions(3)))

    def start_warehouse(self) -> None:
        self.warehouse.start()
        services.wait_for_http(f"http://127.0.0.1:{self.warehouse_port}/ping", self.warehouse.popen)
        if self.loader.popen is not None:  # a restart: the engine forgot that merges were held
            services.wait_for(lambda: self.hold_merges() is None, what="merges held")

    def start_loader(self) -> None:
        self.loader.start()
        services.wait_for_http(f"http://127.0.0.1:{self.loader_port}/healthz", self.loader.popen)

    def start_gateway(self) -> None:
        self.gateway.start()
        services.wait_for_http(f"{self.gateway_url}/readyz", self.gateway.popen)

    def start(self) -> "Stack":
        """Broker, warehouse, loader and gateway in order, each healthy before the next; the loader's
        migrations have made the events table when this returns."""
        self.start_broker()
        self.start_warehouse()
        self.start_loader()
        self.start_gateway()
        services.wait_for(lambda: self.duplicates("none") == 0, what="events table")
        self.hold_merges()
        return self

    def stop(self) -> None:
        for process in (self.gateway, self.loader, self.warehouse, self.broker, self.s3):
            if process is not None:
                process.stop()

    def query(self, sql: str, **parameters) -> list[tuple]:
        with connect(self.clickhouse_url) as client:
            return client.query(sql, parameters=parameters).result_rows

    def command(self, sql: str) -> None:
        with connect(self.clickhouse_url) as client:
            client.command(sql)

    def hold_merges(self) -> None:
        """Keep every inserted copy of a row as its own part until `merge_all`: background merges would
        otherwise fold a redelivered copy into the first one at any moment, so neither the raw copies nor
        when an event was first stored could be read back."""
        self.command("SYSTEM STOP MERGES events")

    def merge_all(self) -> None:
        self.command("SYSTEM START MERGES events")
        self.command("OPTIMIZE TABLE events FINAL")

    def copies_by_id(self, run: str) -> dict[str, tuple[int, float]]:
        """event_id -> (raw rows, Unix time the first of them was inserted) for a run, without FINAL."""
        rows = self.query(
            "SELECT toString(event_id), count(), toUnixTimestamp64Milli(min(inserted_at)) FROM events "
            "WHERE session_id = {run:String} GROUP BY event_id",
            run=run,
        )
        return {event_id: (copies, first_ms / 1000) for event_id, copies, first_ms in rows}

    def duplicates(self, run: str) -> int:
        """Rows beyond one per event_id in a plain count(): what a query without FINAL over-counts."""
        ((rows, distinct),) = self.query(
            "SELECT count(), uniqExact(event_id) FROM events WHERE session_id = {run:String}", run=run
        )
        return rows - distinct

    def stored_of(self, run: str, ids: list[str]) -> int:
        """How many of `ids` are stored (each counted once)."""
        return self.query(
            "SELECT uniqExact(event_id) FROM events "
            "WHERE session_id = {run:String} AND toString(event_id) IN {ids:Array(String)}",
            run=run,
            ids=ids,
        )[0][0]

    @staticmethod
    def freeze(process: services.Process) -> None:
        """SIGSTOP: the process keeps its sockets, so what is sent to it waits, unread, until `thaw`."""
        process.popen.send_signal(signal.SIGSTOP)

    @staticmethod
    def thaw(process: services.Process) -> None:
        process.popen.send_signal(signal.SIGCONT)

    def loader_insert_failures(self) -> float:
        """The loader's `pravis_loader_insert_failures_total` for `events` (0 before its first failure)."""
        return self.loader_metric("pravis_loader_insert_failures_total", {"table": "events"})

    def loader_batches_in_flight(self) -> float:
        """Batches the loader fetched and has not committed: inserting, or waiting for the one before."""
        return self.loader_metric("pravis_loader_batches_in_flight")

    def loader_metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.loader_port}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and sample.labels == (labels or {}):
                    return sample.value
        return 0.0


@dataclass
class Attempt:
    """One POST of a batch: its event_ids and how it ended (`None` while in flight)."""

    ids: list[str]
    outcome: str | None = None
    """"200", "503", ... or the transport error's class name (ConnectError: refused before sending)."""
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Load:
    """Posts a batch of `batch` events every `interval_s` through the gateway, like an SDK: a batch refused
    (503, connection error) is retried with the same event_ids after Retry-After."""

    gateway_url: str
    api_key: str
    run: str
    batch: int = 20
    interval_s: float = 0.05
    accepted: set[str] = field(default_factory=set)
    order: list[str] = field(default_factory=list)
    """Accepted event_ids in the order the gateway acknowledged them."""
    acked_at: dict[str, float] = field(default_factory=dict)
    """event_id -> Unix time its 200 arrived (the broker acked it a little before)."""
    outcomes: dict[str, int] = field(default_factory=dict)
    retry_after: set[str] = field(default_factory=set)
    first_503_at: float | None = None
    in_flight: Attempt | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _events(self) -> list[dict]:
        now = datetime.now(UTC).isoformat()
        return [
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "page_view",
                "timestamp": now,
                "anonymous_id": f"{self.run}-{i % 7}",
                "session_id": self.run,
                "page_url": "https://boutique.example/shoes",
            }
            for i in range(self.batch)
        ]

    def _post(self, client: httpx.Client, events: list[dict]) -> tuple[str, httpx.Response | None]:
        attempt = Attempt([e["event_id"] for e in events])
        self.in_flight = attempt
        body = {"events": events, "sent_at": datetime.now(UTC).isoformat()}
        answer = None
        try:
            answer = client.post(
                f"{self.gateway_url}/api/v1/analytics/events", json=body, headers={"X-API-Key": self.api_key}
            )
            attempt.outcome = str(answer.status_code)
        except httpx.HTTPError as exc:
            attempt.outcome = type(exc).__name__
        self.in_flight = None
        attempt.done.set()
        self.outcomes[attempt.outcome] = self.outcomes.get(attempt.outcome, 0) + 1
        return attempt.outcome, answer

    def _run(self) -> None:
        pending: list[dict] | None = None
        with httpx.Client(timeout=5.0) as client:
            while not self._stop.is_set():
                events = pending or self._events()
                outcome, answer = self._post(client, events)
                if outcome == "200":
                    now = time.time()
                    for event in events:
                        self.accepted.add(event["event_id"])
                        self.order.append(event["event_id"])
                        self.acked_at[event["event_id"]] = now
                    pending = None
                    self._stop.wait(self.interval_s)
                    continue
                pending = events
                if outcome == "503":
                    self.first_503_at = self.first_503_at or time.time()
                    self.retry_after.add(answer.headers.get("Retry-After", ""))
                self._stop.wait(0.2)

    def start(self) -> "Load":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def wait_accepted(self, more_than: int) -> None:
        services.wait_for(lambda: len(self.accepted) > more_than, what=f"{more_than} accepted events")

    def wait_in_flight(self, timeout_s: float = 10.0) -> Attempt:
        """The next request once it is under way (sent or being sent, not answered yet)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            attempt = self.in_flight
            if attempt is not None and not attempt.done.is_set():
                return attempt
            time.sleep(0.0005)
        raise TimeoutError(f"no request in flight within {timeout_s}s")
