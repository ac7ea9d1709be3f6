"""Gateway throughput: the same gateway publishing to the embedded broker vs a null sink, in one run.

`make bench` (or `python -m bench.gateway --seconds 10 --batch 50 --concurrency 32`). The load generator runs
in its own process so its CPU is not counted as the gateway's; both share the machine's cores.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from pravis_gateway.keys import KeyStore
from pravis_local import testing
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

console = Console()


def make_bodies(count: int, batch: int) -> list[bytes]:
    """Distinct request bodies (unique event_ids), built before timing starts."""
    now = datetime.now(UTC).isoformat()
    bodies = []
    for _ in range(count):
        events = [
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "page_view" if i % 2 else "api_request",
                "timestamp": now,
                "anonymous_id": f"anon-{i % 97}",
                "session_id": "s-1",
                **(
                    {"page_url": "https://boutique.example/p/123"}
                    if i % 2
                    else {
                        "endpoint": "/api/v1/products/{id}",
                        "method": "GET",
                        "status": 200,
                        "duration_ms": 12.5,
                    }
                ),
            }
            for i in range(batch)
        ]
        bodies.append(json.dumps({"events": events, "sent_at": now}).encode())
    return bodies


async def load(url: str, key: str, bodies: list[bytes], seconds: float, concurrency: int, label: str) -> dict:
    sent_events = failed = requests = 0
    batch = json.loads(bodies[0])["events"].__len__()
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    with Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        task = progress.add_task(label, total=seconds)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

            async def worker(offset: int) -> None:
                nonlocal sent_events, failed, requests
                i = offset
                while time.monotonic() < deadline:
                    began = time.perf_counter()
                    response = await client.post(
                        "/api/v1/analytics/events",
                        content=bodies[i % len(bodies)],
                        headers={"X-API-Key": key, "Content-Type": "application/json"},
                    )
                    latencies.append(time.perf_counter() - began)
                    requests += 1
                    if response.status_code == 200:
                        sent_events += batch
                    else:
                        failed += 1
                    i += concurrency

            async def tick() -> None:
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.25)
                    progress.update(task, completed=seconds - max(0.0, deadline - time.monotonic()))

            began = time.monotonic()
            await asyncio.gather(tick(), *(worker(n) for n in range(concurrency)))
            elapsed = time.monotonic() - began
    latencies.sort()
    return {
        "label": label,
        "events_per_s": sent_events / elapsed,
        "requests": requests,
        "failed": failed,
        "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else 0.0,
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
    }


def run_gateway(sink: str, env: dict[str, str], log_dir: Path) -> tuple[testing.Process, str]:
    port = testing.free_port()
    process = testing.Process(
        f"bench-gateway-{sink}",
        [sys.executable, "-m", "pravis_gateway", "--port", str(port)],
        log_dir,
        {**env, "PRAVIS_SINK": sink},
    ).start()
    url = f"http://127.0.0.1:{port}"
    testing.wait_for_http(url + "/readyz", process.popen)
    return process, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="pravis-bench-"))
    key, _ = KeyStore(work / "keys.json").create("bench", "write")
    bodies = make_bodies(2000, args.batch)
    results = []
    with testing.kafka_bootstrap(work) as bootstrap:
        env = {"PRAVIS_KAFKA_BOOTSTRAP": bootstrap, "PRAVIS_DATA_DIR": str(work)}
        for sink in ("null", "kafka"):
            process, url = run_gateway(sink, env, work)
            try:
                label = f"gateway → {sink}"
                results.append(asyncio.run(load(url, key, bodies, args.seconds, args.concurrency, label)))
            finally:
                process.stop()

    table = Table("path", "events/s", "requests", "non-200", "p50 ms", "p99 ms", "vs null sink")
    ceiling = results[0]["events_per_s"]
    for r in results:
        table.add_row(
            r["label"],
            f"{r['events_per_s']:,.0f}",
            str(r["requests"]),
            str(r["failed"]),
            f"{r['p50_ms']:.1f}",
            f"{r['p99_ms']:.1f}",
            f"{r['events_per_s'] / ceiling:.2f}",
        )
    console.print(table)
    console.print(
        f"[dim]{args.batch}-event batches, {args.concurrency} concurrent requests, logs in {work}[/]"
    )


if __name__ == "__main__":
    main()
