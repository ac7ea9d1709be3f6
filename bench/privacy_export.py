"""Export of one user with many events (default 100k): time, rows/s and the gateway's memory while streaming.

`python -m bench.privacy_export --events 100000`. The rows go straight into ClickHouse (the loader is not what
is measured); the export then runs through the real gateway endpoint with a secret key.
"""

import argparse
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from pravis_gateway.keys import KeyStore
from pravis_rollups.clickhouse import connect, insert_json_rows, migrate
from rich.console import Console
from rich.progress import Progress

from tests.support import services

console = Console(width=120)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def load_rows(url: str, user: str, count: int) -> None:
    start = datetime.now(UTC) - timedelta(days=10)
    with connect(url) as client, Progress(console=console) as progress:
        task = progress.add_task(f"inserting {count:,} events of {user}", total=count)
        for offset in range(0, count, 20_000):
            rows = [
                orjson.dumps(
                    {
                        "event_id": str(uuid.uuid4()),
                        "event_type": "page_view",
                        "project_id": "bench",
                        "timestamp": (start + timedelta(seconds=i)).isoformat(),
                        "received_at": (start + timedelta(seconds=i)).isoformat(),
                        "user_id": user,
                        "session_id": f"s-{i // 50}",
                        "page_url": f"https://boutique.example/p/{i % 500}",
                        "properties": {"plan": "gold", "position": i},
                    }
                )
                for i in range(offset, min(count, offset + 20_000))
            ]
            insert_json_rows(client, "events", rows)
            progress.advance(task, len(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pravis-export-bench-"))
    secret, _ = KeyStore(work / "keys.json").create("bench", "secret")
    user = "bench-user"
    with (
        services.kafka_bootstrap(work) as bootstrap,
        services.clickhouse_server_url(work / "chdb", work) as server,
    ):
        url = f"{server}/bench"
        migrate(url)
        load_rows(url, user, args.events)
        port = services.free_port()
        env = {
            "PRAVIS_KAFKA_BOOTSTRAP": bootstrap,
            "PRAVIS_CLICKHOUSE_URL": url,
            "PRAVIS_DATA_DIR": str(work),
        }
        gateway = services.Process(
            "gateway", [sys.executable, "-m", "pravis_gateway", "--port", str(port)], work, env
        )
        gateway.start()
        try:
            services.wait_for_http(f"http://127.0.0.1:{port}/readyz", gateway.popen)
            pid = gateway.popen.pid
            before = rss_kib(pid)
            peak, done = before, threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, rss_kib(pid))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            rows = size = 0
            began = time.perf_counter()
            with httpx.stream(
                "GET",
                f"http://127.0.0.1:{port}/api/v1/user/data",
                params={"user_id": user},
                headers={"X-API-Key": secret},
                timeout=600,
            ) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    rows += 1
                    size += len(line) + 1
            elapsed = time.perf_counter() - began
            done.set()
            sampler.join()
        finally:
            gateway.stop()
    console.print(
        f"exported {rows:,} rows ({size / 2**20:.1f} MiB) in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s; "
        f"gateway RSS {before / 1024:.0f} MiB before, {peak / 1024:.0f} MiB peak "
        f"(+{(peak - before) / 1024:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
