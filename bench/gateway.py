"""Gateway throughput: the same gateway publishing to the embedded broker vs a null sink, in one run, against
the ceiling of bare validation.

`make bench` (or `python -m bench.gateway --seconds 10`). Load comes from wrk (max throughput, closed loop,
bodies cycled from a file of distinct 50-event batches) and hey (a fixed request rate at half the measured
maximum, for latency under normal load); both are C/Go programs from Debian, so the load generator costs the
2-core machine far less CPU than a Python client would. The first row is `bench.bare_validation`, an
endpoint that only validates the same bodies with the project's models: the gateway's own per-event cost is
the distance from it (targets in docs/scaling.md: null sink >= 0.5x bare validation, Kafka >= 0.8x the null
sink).

The rows run in `--rounds` interleaved rounds (bare, null, Kafka, Kafka, then again): a shared or throttled
machine's speed drifts by tens of percent within minutes, which back-to-back rows would read as a ratio. Each
max-load row reports its best round (the least disturbed; noise only ever slows), each half-load row its
median round.
"""

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
from pravis_gateway.keys import KeyStore
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tests.support import services

console = Console(width=140)
WRK_SCRIPT = """
local bodies, i = {}, 0
local key = os.getenv("PRAVIS_BENCH_KEY")
for line in io.lines(os.getenv("PRAVIS_BENCH_BODIES")) do bodies[#bodies + 1] = line end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = key
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


@dataclass
class Result:
    label: str
    requests_per_s: float
    non_2xx: int
    p50_ms: float | None
    p99_ms: float | None
    """None when the load generator saw no successful request to measure (it then prints no distribution)."""
    requests: int = 0
    server_cpu_s: float | None = None
    """CPU seconds the server's processes used during the run: per event it is what a shared machine's load
    from other programs changes least (wall-clock throughput moves with it)."""


def mixed_event(index: int, event_id: str, anonymous_id: str, timestamp: str) -> dict:
    """The benchmarks' event mix: odd indexes a page view with a user agent, even ones an API request."""
    fields = (
        {"page_url": "https://boutique.example/p/123", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"}
        if index % 2
        else {"endpoint": "/api/v1/products/{id}", "method": "GET", "status": 200, "duration_ms": 12.5}
    )
    return {
        "event_id": event_id,
        "event_type": "page_view" if index % 2 else "api_request",
        "timestamp": timestamp,
        "anonymous_id": anonymous_id,
        "session_id": "s-1",
        **fields,
    }


def make_bodies(path: Path, count: int, batch: int, users_per_batch: int) -> None:
    """Distinct request bodies (unique event_ids), one JSON batch per line, built before timing starts.

    A browser SDK's batch is one user; a server-side batch may mix many users, and the gateway then publishes
    one record per partition its users map to, so both shapes are measured.
    """
    now = datetime.now(UTC).isoformat()
    with path.open("w") as out:
        for _ in range(count):
            users = [f"anon-{uuid.uuid4().hex[:8]}" for _ in range(users_per_batch)]
            events = [
                mixed_event(i, str(uuid.uuid4()), users[i % users_per_batch], now) for i in range(batch)
            ]
            out.write(json.dumps({"events": events, "sent_at": now}) + "\n")


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def with_progress(label: str, seconds: float, command: list[str], env: dict[str, str]) -> str:
    """Run a load generator, showing elapsed time, and return its output."""
    result: dict[str, str] = {}

    def run() -> None:
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
        result["out"] = done.stdout

    worker = threading.Thread(target=run)
    with Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task(label, total=seconds)
        worker.start()
        started = time.monotonic()
        while worker.is_alive():
            progress.update(task, completed=min(seconds, time.monotonic() - started))
            worker.join(0.25)
    if "out" not in result:
        raise RuntimeError(f"{command[0]} failed")
    return result["out"]


def wrk(url: str, key: str, bodies: Path, seconds: float, connections: int, label: str) -> Result:
    script = bodies.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script), url]
    env = {"PRAVIS_BENCH_KEY": key, "PRAVIS_BENCH_BODIES": str(bodies), "PATH": "/usr/bin:/bin"}
    return parse_wrk(with_progress(label, seconds, command, env), label)


def parse_wrk(out: str, label: str) -> Result:
    """wrk's --latency report as a Result (no latency when wrk printed no distribution: nothing finished)."""
    latency = {p: _ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    return Result(
        label,
        float(rate.group(1)) if rate else 0.0,
        int(non_2xx.group(1)) if non_2xx else 0,
        latency.get("50"),
        latency.get("99"),
        int(done.group(1)) if done else 0,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (uvicorn's worker processes)."""
    root = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])


def hey(url: str, key: str, body: Path | None, seconds: float, rate: float, label: str) -> Result:
    """A fixed request rate: POSTs of `body`, or GETs without one."""
    workers = 8
    command = ["hey", "-z", f"{seconds:g}s", "-c", str(workers), "-q", f"{rate / workers:.2f}"]
    if body is not None:
        command += ["-m", "POST", "-T", "application/json", "-D", str(body)]
    command += ["-H", f"X-API-Key: {key}", url]
    return parse_hey(with_progress(label, seconds, command, {"PATH": "/usr/bin:/bin"}), label)


def parse_hey(out: str, label: str) -> Result:
    """hey's report as a Result (non-2xx: every status but 200)."""
    quantiles = {p: float(v) * 1000 for p, v in re.findall(r"(50|99)%+ in ([\d.]+) secs", out)}
    statuses = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out)}
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return Result(
        label,
        float(rate.group(1)) if rate else 0.0,
        sum(n for c, n in statuses.items() if c != 200),
        quantiles.get("50"),
        quantiles.get("99"),
    )


def run_gateway(sink: str, env: dict[str, str], log_dir: Path, workers: int) -> tuple[services.Process, str]:
    """The gateway publishing to `sink`, or with sink "bare" the validation-only endpoint."""
    port = services.free_port()
    command = (
        [sys.executable, "-m", "bench.bare_validation", "--port", str(port)]
        if sink == "bare"
        else [sys.executable, "-m", "pravis_gateway", "--port", str(port), "--workers", str(workers)]
    )
    process = services.Process(
        f"bench-gateway-{sink}",
        command,
        log_dir,
        {**env, "PRAVIS_SINK": sink, "PRAVIS_RATE_LIMIT_EVENTS_PER_S": "0"},
    ).start()
    url = f"http://127.0.0.1:{port}"
    services.wait_for_http(url + "/readyz", process.popen)
    return process, url


def _cpu_per_event(result: Result, batch: int) -> float | None:
    if result.server_cpu_s is None or not result.requests:
        return None
    return result.server_cpu_s / (result.requests * batch) * 1e6


def _ratios(result: Result, reference: Result, batch: int) -> str:
    """Throughput as a fraction of the reference's, and (in brackets) its CPU per event's inverse ratio."""
    wall = f"{result.requests_per_s / reference.requests_per_s:.2f}" if reference.requests_per_s else "—"
    cpu, reference_cpu = _cpu_per_event(result, batch), _cpu_per_event(reference, batch)
    return f"{wall} ({reference_cpu / cpu:.2f})" if cpu and reference_cpu else wall


def summarize(row: tuple[Result, ...]) -> Result:
    """One row of the table from its rounds: a max-load row's best round, a half-load row's median latencies
    (at the median rate)."""
    if "max load" in row[0].label:
        return max(row, key=lambda r: r.requests_per_s)
    p50 = [r.p50_ms for r in row if r.p50_ms is not None]
    p99 = [r.p99_ms for r in row if r.p99_ms is not None]
    return Result(
        row[0].label,
        statistics.median(r.requests_per_s for r in row),
        sum(r.non_2xx for r in row),
        statistics.median(p50) if p50 else None,
        statistics.median(p99) if p99 else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of unrecorded load before each row"
    )
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the gateway")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every row")
    args = parser.parse_args()
    for tool in ("wrk", "hey"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is missing: apt-get install -y wrk hey (make bench installs them)")

    work = Path(tempfile.mkdtemp(prefix="pravis-bench-"))
    key, _ = KeyStore(work / "keys.json").create("bench", "write")
    shapes = {"1 user/batch": work / "browser.jsonl", f"{args.batch} users/batch": work / "server.jsonl"}
    make_bodies(shapes["1 user/batch"], 2000, args.batch, 1)
    make_bodies(shapes[f"{args.batch} users/batch"], 2000, args.batch, args.batch)
    one_body = work / "body.json"
    one_body.write_text(shapes["1 user/batch"].open().readline())
    runs = [
        ("bare", "1 user/batch"),
        ("null", "1 user/batch"),
        ("kafka", "1 user/batch"),
        ("kafka", f"{args.batch} users/batch"),
    ]
    rounds: list[list[Result]] = []
    with services.kafka_bootstrap(work) as bootstrap:
        env = {"PRAVIS_KAFKA_BOOTSTRAP": bootstrap, "PRAVIS_DATA_DIR": str(work)}
        for round_number in range(1, args.rounds + 1):
            results: list[Result] = []
            for sink, shape in runs:
                process, url = run_gateway(sink, env, work, args.workers)
                endpoint = url + "/api/v1/analytics/events"
                label = "bare validation (ceiling)" if sink == "bare" else f"gateway → {sink}, {shape}"
                shown = f"{label} [{round_number}/{args.rounds}]"
                try:
                    # Steady state: the first requests pay one-off costs (user-agent regexes, lazy schemas).
                    wrk(endpoint, key, shapes[shape], args.warmup, args.connections, f"{shown}, warm-up")
                    cpu_before = cpu_seconds(process.popen.pid)
                    peak = wrk(
                        endpoint, key, shapes[shape], args.seconds, args.connections, f"{shown}, max load"
                    )
                    peak.label = f"{label}, max load"
                    peak.server_cpu_s = cpu_seconds(process.popen.pid) - cpu_before
                    results.append(peak)
                    if shape == "1 user/batch" and sink != "bare":
                        rate = peak.requests_per_s / 2
                        half = hey(endpoint, key, one_body, args.seconds, rate, f"{shown}, half load")
                        half.label = f"{label}, half load"
                        results.append(half)
                finally:
                    process.stop()
            rounds.append(results)
    results = [summarize(row) for row in zip(*rounds, strict=True)]

    bare, null_sink = results[0], results[1]
    table = Table(
        "path",
        "events/s",
        "requests/s",
        "non-2xx",
        "p50 ms",
        "p99 ms",
        "server CPU µs/event",
        "vs bare (max)",
        "vs null sink (max)",
    )
    for r in results:
        peak = "max" in r.label
        cpu = _cpu_per_event(r, args.batch)
        table.add_row(
            r.label,
            f"{r.requests_per_s * args.batch:,.0f}",
            f"{r.requests_per_s:,.0f}",
            str(r.non_2xx),
            "—" if r.p50_ms is None else f"{r.p50_ms:.1f}",
            "—" if r.p99_ms is None else f"{r.p99_ms:.1f}",
            "" if cpu is None else f"{cpu:.1f}",
            _ratios(r, bare, args.batch) if peak else "",
            _ratios(r, null_sink, args.batch) if peak and "kafka" in r.label else "",
        )
    console.print(table)
    console.print(
        "[dim]ratios: requests/s (wall clock), then in brackets the inverse ratio of server CPU per event, "
        "which holds when other programs load the machine[/]"
    )
    console.print(
        f"[dim]{args.batch}-event batches, {args.connections} connections at max load, "
        f"{args.workers} gateway worker(s), one Kafka record per (batch, partition); max load: best of "
        f"{args.rounds} interleaved rounds, half load: median; logs in {work}[/]"
    )


if __name__ == "__main__":
    main()
