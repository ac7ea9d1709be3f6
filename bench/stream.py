"""Stream tier: sustained events/s on a pre-loaded topic, freshness in live mode, spike → alert latency, per
number of workers; and the cost of counting retries once (dedup) per event and per million ids.

`python -m bench.stream [--events 300000] [--rows-per-record 1] [--workers 1,2,3] [--rate 5000]`. Runs the
embedded broker and real `python -m pravis_stream` workers; this process plays the gateway (it publishes rows
exactly as the gateway writes them, `received_at` = send time) so the stream tier is measured alone. Each
worker count gets a fresh broker and one row:

1. Pre-loaded: N events are published before the workers start; events/s = events counted from the moment
   the group's assignment is stable (every partition owned by exactly one worker: joining members make the
   first ones hand partitions over) until all are counted, from the workers' `pravis_stream_events_total`.
2. Live freshness: while a background load runs at --rate events/s, single probe events of a separate project
   are published and their project's live summary is polled every 5 ms on the first worker (which answers for
   every partition by asking the others); freshness = visible - published.
3. Spike → alert: after a warm-up of normal traffic (--warmup-buckets detection buckets), half the events turn
   into errors; latency = first error published → `error_rate` alert read from the `alerts` topic, and how
   many `error_rate` firings arrived for it (one per anomaly whatever the number of workers).

Dedup, in this process: µs per event of the digest, lookup and insert on top of counting (the whole
`add_records` with fresh ids vs the same rows replayed as retries), and the RSS a million remembered ids add.
"""

import argparse
import asyncio
import gc
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pravis_schemas import topics
from pravis_stream.dedup import EventIds, event_digest
from pravis_stream.partition_state import LiveState
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tests.support import services

console = Console()
EVENTS_METRIC = re.compile(rb"^pravis_stream_events_total (\S+)$", re.M)


def iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def make_row(i: int, project: str, error: bool = False) -> dict:
    now = iso_now()
    base = {
        "event_id": str(uuid.uuid4()),
        "timestamp": now,
        "anonymous_id": f"anon-{i % 5000}",
        "session_id": "s-1",
        "properties": {},
        "project_id": project,
        "received_at": now,
        "sent_at": now,
        "ip": "127.0.0.0",
    }
    if error:
        return {**base, "event_type": "error", "error_type": "BenchError"}
    kind = i % 10
    if kind < 4:
        return {**base, "event_type": "page_view", "page_url": "https://boutique.example/p/1"}
    if kind < 8:
        return {
            **base,
            "event_type": "api_request",
            "endpoint": f"/api/v1/products/{{id}}/{i % 5}",
            "method": "GET",
            "status": 200,
            "duration_ms": 10.0 + i % 50,
            "cache_hit": i % 3 == 0,
        }
    if kind < 9:
        return {
            **base,
            "event_type": "voice_request",
            "interaction_id": "i-1",
            "request_duration_ms": 700.0 + i % 300,
            "success": True,
            "model_used": "whisper-small",
        }
    return {**base, "event_type": "button_click", "button_id": "add-to-cart"}


def records(start: int, count: int, rows_per_record: int, project: str, error_share: float = 0.0):
    """(key, value) records as the gateway writes them: rows of one key joined by newlines."""
    out = []
    for first in range(start, start + count, rows_per_record):
        rows = [
            make_row(i, project, error=(i % 100) < error_share * 100)
            for i in range(first, min(first + rows_per_record, start + count))
        ]
        out.append((rows[0]["anonymous_id"].encode(), b"\n".join(orjson.dumps(r) for r in rows)))
    return out


async def publish(producer: AIOKafkaProducer, batch) -> None:
    futures = [await producer.send(topics.EVENTS, value, key=key) for key, value in batch]
    await asyncio.gather(*futures)


def counted(urls: list[str]) -> float:
    total = 0.0
    for url in urls:
        match = EVENTS_METRIC.search(httpx.get(url + "/metrics", timeout=5).content)
        total += float(match.group(1)) if match else 0.0
    return total


def assignment_stable(urls: list[str], partitions: int) -> bool:
    """Every partition of `events` is owned by exactly one of the workers (their /healthz)."""
    owned = [httpx.get(url + "/healthz", timeout=5).json()["partitions"] for url in urls]
    return all(owned) and sorted(p for mine in owned for p in mine) == list(range(partitions))


def start_workers(n: int, env: dict[str, str], log_dir: Path) -> tuple[list[services.Process], list[str]]:
    processes, urls = [], []
    for i in range(n):
        port = services.free_port()
        process = services.Process(
            f"bench-stream-{i}",
            [sys.executable, "-m", "pravis_stream", "--port", str(port), "--loglevel", "warn"],
            log_dir,
            {**env, "PRAVIS_STREAM_WEB_PORT": str(port)},
        ).start()
        processes.append(process)
        urls.append(f"http://127.0.0.1:{port}")
    for process, url in zip(processes, urls, strict=True):
        services.wait_for_http(url + "/healthz", process.popen, timeout_s=120)
    return processes, urls


async def preloaded(bootstrap: str, args, workers: int, env: dict[str, str], log_dir: Path) -> dict:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=512 * 1024)
    await producer.start()
    with Progress(TextColumn("[bold]pre-loading"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("load", total=args.events)
        for start in range(0, args.events, 20_000):
            count = min(20_000, args.events - start)
            await publish(producer, records(start, count, args.rows_per_record, "bench"))
            bar.update(task, advance=count)
    await producer.stop()

    processes, urls = start_workers(workers, env, log_dir)
    first = last = None
    with Progress(
        TextColumn("[bold]consuming"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task("consume", total=args.events)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            done = counted(urls)
            now = time.monotonic()
            if first is None and assignment_stable(urls, args.partitions):
                if done >= args.events:
                    raise RuntimeError("all events were counted before the group settled: raise --events")
                first = (now, done)
            bar.update(task, completed=done)
            if done >= args.events:
                last = (now, done)
                break
            await asyncio.sleep(0.05)
    if first is None or last is None:
        raise RuntimeError("the workers did not settle and count every pre-loaded event within 10 minutes")
    rate = (last[1] - first[1]) / max(last[0] - first[0], 1e-6)
    return {"processes": processes, "urls": urls, "events_per_s": rate}


async def background(producer: AIOKafkaProducer, rate: float, stop: asyncio.Event, state: dict) -> None:
    """--rate events/s in 20 ms ticks; `state["error_share"]` is read at every tick."""
    i, tick = 10_000_000, 0.02
    per_tick = max(1, int(rate * tick))
    next_at = time.monotonic()
    while not stop.is_set():
        await publish(producer, records(i, per_tick, 1, "bench-live", state["error_share"]))
        i += per_tick
        next_at += tick
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def freshness(producer: AIOKafkaProducer, url: str, probes: int) -> list[float]:
    project = f"bench-fresh-{secrets.token_hex(3)}"
    latencies = []
    async with httpx.AsyncClient(timeout=5) as client:

        async def total() -> int:
            return (await client.get(f"{url}/live/{project}/summary")).json()["events"]["total"]

        with Progress(
            TextColumn("[bold]freshness"), BarColumn(), MofNCompleteColumn(), console=console
        ) as bar:
            task = bar.add_task("probes", total=probes)
            for n in range(1, probes + 1):
                sent = time.monotonic()
                await publish(producer, records(n, 1, 1, project))
                while await total() < n:
                    if time.monotonic() - sent > 30:
                        raise RuntimeError("a probe event never became visible")
                    await asyncio.sleep(0.005)
                latencies.append(time.monotonic() - sent)
                bar.update(task, advance=1)
                await asyncio.sleep(0.05)
    return latencies


async def wait_for_alert(bootstrap: str, since: float, timeout_s: float, settle_s: float) -> tuple:
    """(seconds to the first `error_rate` firing or None, firings counted until `settle_s` after it)."""
    consumer = AIOKafkaConsumer(topics.ALERTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    first, firings = None, 0
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=100)).values():
                for record in batch:
                    alert = orjson.loads(record.value)
                    if (
                        alert["project_id"] == "bench-live"
                        and alert["metric"] == "error_rate"
                        and alert["status"] == "firing"
                    ):
                        firings += 1
                        if first is None:
                            first = time.monotonic() - since
                            deadline = time.monotonic() + settle_s
    finally:
        await consumer.stop()
    return first, firings


async def live(bootstrap: str, urls: list[str], args, interval: float) -> dict:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    stop, state = asyncio.Event(), {"error_share": 0.01}
    load = asyncio.create_task(background(producer, args.rate, stop, state))
    try:
        latencies = await freshness(producer, urls[0], args.probes)
        warmup_s = (args.warmup_buckets + 2) * interval
        with Progress(TextColumn("[bold]warm-up"), BarColumn(), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("warmup", total=warmup_s)
            began = time.monotonic()
            while time.monotonic() - began < warmup_s:
                await asyncio.sleep(0.25)
                bar.update(task, completed=time.monotonic() - began)
        spike_at = time.monotonic()
        state["error_share"] = 0.5
        alert_latency, firings = await wait_for_alert(bootstrap, spike_at, 60, settle_s=4 * interval)
    finally:
        stop.set()
        await load
        await producer.stop()
    latencies.sort()
    return {
        "freshness_p50_s": statistics.median(latencies),
        "freshness_p95_s": latencies[int(0.95 * (len(latencies) - 1))],
        "alert_latency_s": alert_latency,
        "firings": firings,
    }


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def dedup_cost(events: int) -> dict:
    """µs per event that counting once adds, and the RSS of a million remembered ids (this process)."""
    now = datetime.now(UTC)
    batch = [
        (offset, b"\n".join(orjson.dumps(r) for r in (make_row(offset, "bench"),)))
        for offset in range(events)
    ]
    state = LiveState(1, 24 * 60, 5.0, 0.5, now.timestamp())
    state.assign(0, [])
    began = time.perf_counter()
    state.add_records(0, batch, now)
    counted_s = time.perf_counter() - began
    retries = [(events + offset, value) for offset, value in batch]
    began = time.perf_counter()
    skipped = state.add_records(0, retries, now).duplicates
    retry_s = time.perf_counter() - began
    ids = [str(uuid.uuid4()) for _ in range(200_000)]
    fresh = EventIds(horizon_s=7200.0)
    began = time.perf_counter()
    for event_id in ids:  # what add_records does per event to count it once
        digest = event_digest("bench", event_id)
        if digest not in fresh.seen:
            fresh.seen.add(digest)
            fresh.slice_for(now.timestamp()).append(digest)
    dedup_s = time.perf_counter() - began

    del state, batch, retries
    gc.collect()
    before = rss_bytes()
    held = EventIds(horizon_s=7200.0, max_ids=2_000_000)
    at = now.timestamp()
    for n in range(1_000_000):
        held.remember(event_digest("bench", f"{n:08d}-rss"), at - n * 0.007)
    after = rss_bytes()
    return {
        "count_us": counted_s / events * 1e6,
        "retry_us": retry_s / events * 1e6,
        "dedup_us": dedup_s / len(ids) * 1e6,
        "skipped": skipped,
        "events": events,
        "rss_per_million_mib": (after - before) / 2**20,
    }


def run_workers(workers: int, args) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"pravis-bench-stream-{workers}w-"))
    env = {
        "PRAVIS_DATA_DIR": str(work),
        "PRAVIS_STREAM_APP_ID": f"bench-stream-{secrets.token_hex(3)}",
        "PRAVIS_STREAM_DETECT_INTERVAL_S": str(args.detect_interval),
        "PRAVIS_STREAM_WARMUP_BUCKETS": str(args.warmup_buckets),
        "PRAVIS_STREAM_REBALANCE_TIMEOUT_S": "3",
        "PRAVIS_LOG_FORMAT": "json",
    }
    with services.kafka_bootstrap(work, events_partitions=args.partitions) as bootstrap:
        env["PRAVIS_KAFKA_BOOTSTRAP"] = bootstrap
        first = asyncio.run(preloaded(bootstrap, args, workers, env, work))
        try:
            second = asyncio.run(live(bootstrap, first["urls"], args, args.detect_interval))
        finally:
            for process in first["processes"]:
                process.stop()
    return {**first, **second, "logs": work}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rows-per-record", type=int, default=1, help="1 = every event its own record")
    parser.add_argument("--workers", default="1", help="worker counts, one row each, e.g. 1,2,3")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--rate", type=float, default=5000.0, help="background events/s in live mode")
    parser.add_argument("--probes", type=int, default=60)
    parser.add_argument("--detect-interval", type=float, default=5.0)
    parser.add_argument("--warmup-buckets", type=int, default=12)
    parser.add_argument("--dedup-events", type=int, default=200_000)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    os.environ.pop("PRAVIS_KAFKA_BOOTSTRAP", None)
    rows = {n: run_workers(n, args) for n in counts}
    dedup = dedup_cost(args.dedup_events)

    table = Table(
        "workers", "events/s", "vs first row", "freshness p50", "p95 (< 2 s)", "spike → alert (< 10 s)"
    )
    base = rows[counts[0]]["events_per_s"]
    for n, row in rows.items():
        alert = row["alert_latency_s"]
        alert_text = f"{alert:.1f} s, {row['firings']} firing(s)" if alert is not None else "no alert in 60 s"
        table.add_row(
            str(n),
            f"{row['events_per_s']:,.0f}",
            f"{row['events_per_s'] / base:.2f}",
            f"{row['freshness_p50_s'] * 1000:.0f} ms",
            f"{row['freshness_p95_s'] * 1000:.0f} ms",
            alert_text,
        )
    console.print(table)
    console.print(
        f"[dim]{args.partitions} partitions, {args.rows_per_record} row(s) per record, live load "
        f"{args.rate:,.0f} events/s, detection bucket {args.detect_interval} s; logs in "
        f"{', '.join(str(r['logs']) for r in rows.values())}[/]"
    )
    console.print(
        f"dedup: counting {dedup['count_us']:.2f} µs/event with fresh ids; "
        f"the same {dedup['events']:,} rows again as retries {dedup['retry_us']:.2f} µs/event "
        f"({dedup['skipped']:,} skipped); digest, lookup and insert alone {dedup['dedup_us']:.2f} µs/event; "
        f"a million remembered ids +{dedup['rss_per_million_mib']:.0f} MiB RSS"
    )
    console.print(f"[dim]machine load (1, 5, 15 min): {os.getloadavg()}[/]")


if __name__ == "__main__":
    main()
