"""A fault-injection stack of local processes (Tansu broker, chdb warehouse, loader, gateway) on free ports,
each of which a test can kill -9, stop and restart, plus a steady load posted through the gateway."""

import asyncio
import secrets
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pravis_local import testing
from pravis_local.broker import broker_command, default_partitions, ensure_topics
from pravis_rollups.clickhouse import connect


class Stack:
    """`durable=True` runs the broker on Tansu's s3:// storage against a local S3 server (moto), which
    outlives the broker process, as a durable Kafka's disks would."""

    def __init__(self, root: Path, log_dir: Path, durable: bool = False) -> None:
        self.log_dir = log_dir
        self.durable = durable
        name = "faults-durable" if durable else "faults"
        self.data_dir = root / "data"
        self.chdb_dir = root / "chdb"
        self.broker_port, self.warehouse_port = testing.free_port(), testing.free_port()
        self.gateway_port, self.loader_port = testing.free_port(), testing.free_port()
        self.bootstrap = f"127.0.0.1:{self.broker_port}"
        self.clickhouse_url = f"http://127.0.0.1:{self.warehouse_port}/pravis_faults"
        self.gateway_url = f"http://127.0.0.1:{self.gateway_port}"
        env = {
            "PRAVIS_KAFKA_BOOTSTRAP": self.bootstrap,
            "PRAVIS_CLICKHOUSE_URL": self.clickhouse_url,
            "PRAVIS_DATA_DIR": str(self.data_dir),
            "PRAVIS_LOADER_GROUP_ID": f"faults-{secrets.token_hex(3)}",
            "PRAVIS_LOADER_HEALTH_PORT": str(self.loader_port),
            "PRAVIS_LOADER_BATCH_SECONDS": "0.2",
            "PRAVIS_LOADER_RETRY_MAX_SECONDS": "1",
            "PRAVIS_KAFKA_ACK_TIMEOUT_S": "2",
            "PRAVIS_RETRY_AFTER_S": "1",
        }
        self.s3: testing.Process | None = None
        storage = "memory://tansu/"
        if durable:
            s3_port = testing.free_port()
            self.s3_url = f"http://127.0.0.1:{s3_port}"
            moto = Path(sys.executable).parent / "moto_server"
            self.s3 = testing.Process(f"{name}-s3", [str(moto), "-p", str(s3_port)], log_dir)
            env |= {
                "AWS_ENDPOINT": self.s3_url,
                "AWS_ALLOW_HTTP": "true",
                "AWS_ACCESS_KEY_ID": "pravis",
                "AWS_SECRET_ACCESS_KEY": "pravis",
                "AWS_REGION": "eu-west-2",
                "AWS_DEFAULT_REGION": "eu-west-2",
            }
            storage = "s3://tansu/"
        self.broker = testing.Process(
            f"{name}-broker", broker_command("127.0.0.1", self.broker_port, storage), log_dir, env
        )
        self.warehouse = testing.Process(
            f"{name}-warehouse",
            [
                *(sys.executable, "-m", "pravis_local.warehouse"),
                *("--port", str(self.warehouse_port), "--data-dir", str(self.chdb_dir)),
            ],
            log_dir,
            env,
        )
        self.loader = testing.Process(
            f"{name}-loader", [sys.executable, "-m", "pravis_rollups.loader"], log_dir, env
        )
        self.gateway = testing.Process(
            f"{name}-gateway",
            [sys.executable, "-m", "pravis_gateway", "--port", str(self.gateway_port)],
            log_dir,
            env,
        )

    def start_broker(self) -> None:
        if self.s3 is not None and (self.s3.popen is None or self.s3.popen.poll() is not None):
            self.s3.start()
            testing.wait_for(lambda: httpx.get(self.s3_url, timeout=1).status_code < 500, what="S3 server")
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
        testing.wait_for_http(f"http://127.0.0.1:{self.warehouse_port}/ping", self.warehouse.popen)

    def start_loader(self) -> None:
        self.loader.start()
        testing.wait_for_http(f"http://127.0.0.1:{self.loader_port}/healthz", self.loader.popen)

    def start_gateway(self) -> None:
        self.gateway.start()
        testing.wait_for_http(f"{self.gateway_url}/readyz", self.gateway.popen)

    def start(self) -> "Stack":
        """Broker, warehouse, loader and gateway in order, each healthy before the next; the loader's
        migrations have made the events table when this returns."""
        self.start_broker()
        self.start_warehouse()
        self.start_loader()
        self.start_gateway()
        testing.wait_for(lambda: self.stored("none") == (0, 0), what="events table")
        return self

    def stop(self) -> None:
        for process in (self.gateway, self.loader, self.warehouse, self.broker, self.s3):
            if process is not None:
                process.stop()

    def query(self, sql: str, **parameters) -> list[tuple]:
        with connect(self.clickhouse_url) as client:
            return client.query(sql, parameters=parameters).result_rows

    def stored(self, run: str) -> tuple[int, int]:
        """(rows, distinct event_ids) of a run in `events` FINAL: equal when nothing is counted twice."""
        ((rows, distinct),) = self.query(
            "SELECT count(), uniqExact(event_id) FROM events FINAL WHERE session_id = {run:String}", run=run
        )
        return rows, distinct


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
    statuses: dict[int, int] = field(default_factory=dict)
    retry_after: set[str] = field(default_factory=set)
    first_503_at: float | None = None
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

    def _run(self) -> None:
        pending: list[dict] | None = None
        with httpx.Client(timeout=5.0) as client:
            while not self._stop.is_set():
                events = pending or self._events()
                body = {"events": events, "sent_at": datetime.now(UTC).isoformat()}
                try:
                    answer = client.post(
                        f"{self.gateway_url}/api/v1/analytics/events",
                        json=body,
                        headers={"X-API-Key": self.api_key},
                    )
                    status = answer.status_code
                except httpx.HTTPError:
                    status = 0
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    self.accepted.update(e["event_id"] for e in events)
                    self.order.extend(e["event_id"] for e in events)
                    pending = None
                    self._stop.wait(self.interval_s)
                    continue
                pending = events
                if status == 503:
                    self.first_503_at = self.first_503_at or time.monotonic()
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
        testing.wait_for(lambda: len(self.accepted) > more_than, what=f"{more_than} accepted events")
