"""Soak: the real `pravis up` stack driven through its HTTP API for a long run, sampling every service's
memory.

`make bench` runs `python -m bench.soak` (20M events); `--events 2000000 --sample-seconds 15` is the short
form. Load comes from wrk (C, closed loop), whose Lua script gives every event of every request an event_id of
its own (thread number and request counter), so after the run the number of distinct event_ids in ClickHouse
must reach the events of every answered request: 0 lost. Every `--sample-seconds` it records each service's
RSS, the records the broker holds and the ClickHouse lag p95 (`inserted_at - received_at` of the rows loaded
in the last interval), prints the curve as a table and writes it as a PNG under artifacts/.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from pravis_local.pdeathsig import guarded
from pravis_rollups.clickhouse import connect
from pravis_schemas import topics
from rich.console import Console
from rich.table import Table

from bench.gateway import mixed_event
from tests.support.services import free_port, interrupt, wait_for

console = Console(width=160)
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
BATCH = 50
PROJECT = "default"
# A request's event_ids: 00000000-0000-4000-8TCC-CCCCCCCCCCPP (T thread, C request counter, P position); one
# user per request (a browser's batch), so the requests spread over the partitions by key.
WRK_SCRIPT = """
local template, key = nil, os.getenv("PRAVIS_BENCH_KEY")
local counter, thread_id = 0, 0
local file = io.open(os.getenv("PRAVIS_BENCH_BODY")); template = file:read("*a"); file:close()
setup = function(thread) thread:set("id", thread_number); thread_number = thread_number + 1 end
thread_number = 1
init = function(args) thread_id = id; counter = tonumber(os.getenv("PRAVIS_BENCH_OFFSET")) end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = key
request = function()
  counter = counter + 1
  local prefix = string.format("%x%012x", thread_id, counter)
  local body = template:gsub("EVENTID(%x%x)", function(n)
    return "00000000-0000-4000-8" .. prefix:sub(1, 3) .. "-" .. prefix:sub(4) .. n
  end):gsub("ANONID", "anon-" .. prefix)
  return wrk.format(nil, nil, nil, body)
end
"""
SERVICES = {
    "broker": "tansu",
    "warehouse": "pravis_local.warehouse",
    "loader": "pravis_rollups.loader",
    "scheduler": "pravis_rollups.scheduler",
    "privacy": "pravis_rollups.privacy",
    "stream": "pravis_stream",
    "gateway": "pravis_gateway",
    "dashboards": "pravis_dashboards",
    "monitor": "pravis_local.monitor",
}
PORTS = (
    "BROKER_PORT", "WAREHOUSE_PORT", "GATEWAY_PORT", "STREAM_WEB_PORT", "DASHBOARDS_PORT",
    "LOADER_HEALTH_PORT", "SCHEDULER_HEALTH_PORT", "PRIVACY_HEALTH_PORT", "MONITOR_PORT",
)  # fmt: skip


@dataclass
class Sample:
    elapsed_s: float
    events_sent: int
    rss_mib: dict[str, float]
    broker_records: int
    lag_p95_s: float | None


@dataclass
class Run:
    samples: list[Sample] = field(default_factory=list)
    requests: int = 0
    non_2xx: int = 0


def body_template() -> str:
    now = datetime.now(UTC).isoformat()
    events = [mixed_event(i, f"EVENTID{i:02x}", "ANONID", now) for i in range(BATCH)]
    return json.dumps({"events": events, "sent_at": now})


def service_processes(supervisor: psutil.Process) -> dict[str, psutil.Process]:
    """Each service's process under `pravis up`'s supervisor, by name."""
    found: dict[str, psutil.Process] = {}
    for child in supervisor.children():
        try:
            command = " ".join(child.cmdline())
        except psutil.Error:
            continue
        for name, marker in SERVICES.items():
            if marker in command:
                found[name] = child
    return found


def service_rss(supervisor: psutil.Process) -> dict[str, float]:
    rss: dict[str, float] = {}
    for name, process in service_processes(supervisor).items():
        try:
            rss[name] = process.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return rss


async def broker_records(bootstrap: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()
        partitions = [
            TopicPartition(topics.EVENTS, p) for p in consumer.partitions_for_topic(topics.EVENTS) or ()
        ]
        ends, starts = await consumer.end_offsets(partitions), await consumer.beginning_offsets(partitions)
        return sum(ends[tp] - starts[tp] for tp in partitions)
    finally:
        await consumer.stop()


def lag_p95(clickhouse_url: str, seconds: float) -> float | None:
    with connect(clickhouse_url) as client:
        value = client.command(
            "SELECT quantile(0.95)(dateDiff('millisecond', received_at, inserted_at)) FROM events "
            "WHERE inserted_at >= now64(3) - toIntervalMillisecond({window:UInt64})",
            parameters={"window": int(seconds * 1000)},
        )
    return None if value in ("nan", "", None) else float(value) / 1000


def wrk_segment(
    url: str, key: str, body: Path, seconds: float, connections: int, offset: int
) -> tuple[int, int]:
    script = body.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    env = {
        "PRAVIS_BENCH_KEY": key,
        "PRAVIS_BENCH_BODY": str(body),
        "PRAVIS_BENCH_OFFSET": str(offset),
        "PATH": "/usr/bin:/bin",
    }
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), url]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return requests, int(non_2xx.group(1)) if non_2xx else 0


def sample_now(
    run: Run, began: float, supervisor: psutil.Process, bootstrap: str, clickhouse_url: str, args
) -> Sample:
    sample = Sample(
        time.monotonic() - began,
        run.requests * BATCH,
        service_rss(supervisor),
        asyncio.run(broker_records(bootstrap)),
        lag_p95(clickhouse_url, args.sample_seconds),
    )
    lag = "-" if sample.lag_p95_s is None else f"{sample.lag_p95_s:.2f}"
    console.print(
        f"{sample.elapsed_s / 60:5.1f} min  {sample.events_sent:>11,} events  "
        f"broker {sample.rss_mib.get('broker', 0):7.1f} MiB  lag p95 {lag} s"
    )
    return sample


def plot(run: Run, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (memory, records) = plt.subplots(2, 1, figsize=(10, 8), sharex=True)
    minutes = [s.elapsed_s / 60 for s in run.samples]
    for name in SERVICES:
        memory.plot(minutes, [s.rss_mib.get(name, float("nan")) for s in run.samples], label=name)
    memory.set_ylabel("RSS (MiB)")
    memory.legend(ncol=3, fontsize="small")
    memory.set_title(title)
    records.plot(minutes, [s.events_sent / 1e6 for s in run.samples], label="events sent (M)")
    records.plot(minutes, [s.broker_records / 1e6 for s in run.samples], label="records in the broker (M)")
    records.set_xlabel("minutes")
    records.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


@dataclass
class Stack:
    """`pravis up` started in `work` on free ports, with the dev key `key`, rate limit off."""

    process: subprocess.Popen
    key: str
    gateway: str
    clickhouse_url: str
    bootstrap: str
    log: Path

    @classmethod
    def start(cls, work: Path, settings: dict[str, str]) -> "Stack":
        """`settings`: PRAVIS_* variables for every service; those of the calling shell are not passed on."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PRAVIS_")}
        env |= {f"PRAVIS_{name}": str(free_port()) for name in PORTS}
        key = "pvw_bench_" + os.urandom(8).hex()
        env |= {
            "PRAVIS_DATA_DIR": str(work / "data"),
            "PRAVIS_DEV_API_KEY": key,
            "PRAVIS_RATE_LIMIT_EVENTS_PER_S": "0",
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
        host = "127.0.0.1"
        log = work / "pravis-up.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                # Dies with this process, however it ends (a bench is often interrupted).
                guarded([str(Path(sys.executable).parent / "pravis"), "up"]),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=work,
                start_new_session=True,
            )
        return cls(
            process,
            key,
            f"http://{host}:{env['PRAVIS_GATEWAY_PORT']}/api/v1/analytics/events",
            f"http://{host}:{env['PRAVIS_WAREHOUSE_PORT']}/pravis",
            f"{host}:{env['PRAVIS_BROKER_PORT']}",
            log,
        )

    def wait_until_up(self) -> psutil.Process:
        """The supervisor, once every service is healthy."""
        wait_for(lambda: "Pravis is up" in self.log.read_text(errors="replace"), 180, "pravis up healthy")
        return psutil.Process(self.process.pid)

    def stop(self) -> None:
        interrupt(self.process, 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000_000)
    parser.add_argument("--sample-seconds", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--broker-bound-mib", type=float, default=1024.0)
    parser.add_argument("--flat-mib", type=float, default=100.0, help="allowed growth of every other service")
    parser.add_argument("--lag-p95-s", type=float, default=10.0)
    parser.add_argument(
        "--broker-storage",
        default="memory://tansu/",
        help="PRAVIS_BROKER_STORAGE; s3://BUCKET/ needs the AWS_* variables (docs/reliability.md)",
    )
    parser.add_argument("--min-rate", type=float, default=10_000.0, help="events/s the load must sustain")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk (make bench installs it)")

    work = Path(tempfile.mkdtemp(prefix="pravis-soak-"))
    stack = Stack.start(work, {"PRAVIS_BROKER_STORAGE": args.broker_storage})
    body = work / "body.json"
    body.write_text(body_template())
    run = Run()
    began = time.monotonic()
    try:
        supervisor = stack.wait_until_up()
        console.print(f"stack up, logs in {stack.log}; driving {args.events:,} events")
        began = time.monotonic()
        try:
            while run.requests * BATCH < args.events:
                requests, non_2xx = wrk_segment(
                    stack.gateway,
                    stack.key,
                    body,
                    args.sample_seconds,
                    args.connections,
                    offset=run.requests + 1,
                )
                run.requests += requests
                run.non_2xx += non_2xx
                run.samples.append(
                    sample_now(run, began, supervisor, stack.bootstrap, stack.clickhouse_url, args)
                )
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: load stopped, checking what was sent so far[/]")
        sent_s = time.monotonic() - began
        accepted = (run.requests - run.non_2xx) * BATCH
        with connect(stack.clickhouse_url) as client:

            def loaded() -> int:
                return int(
                    client.command("SELECT uniqExact(event_id) FROM events WHERE project_id = 'default'")
                )

            # Caught up once the count stops moving for a few seconds after the load stopped.
            previous = -1
            while (current := loaded()) != previous:
                previous = current
                time.sleep(5)
    finally:
        stack.stop()

    table = Table(
        "min", "events sent", *SERVICES, "broker records", "lag p95 s", title="RSS (MiB) over the run"
    )
    for s in run.samples:
        table.add_row(
            f"{s.elapsed_s / 60:.1f}",
            f"{s.events_sent:,}",
            *(f"{s.rss_mib.get(name, float('nan')):.0f}" for name in SERVICES),
            f"{s.broker_records:,}",
            "-" if s.lag_p95_s is None else f"{s.lag_p95_s:.2f}",
        )
    console.print(table)
    if not run.samples:
        sys.exit("no sample taken: the load stopped before its first interval")
    first, last = run.samples[0], run.samples[-1]
    lost = max(0, accepted - current)
    growth = {name: last.rss_mib.get(name, 0) - first.rss_mib.get(name, 0) for name in SERVICES}
    broker_peak = max(s.rss_mib.get("broker", 0) for s in run.samples)
    lags = [s.lag_p95_s for s in run.samples if s.lag_p95_s is not None]
    rate = run.requests * BATCH / sent_s
    checks = {
        f"load at least {args.min_rate:,.0f} events/s ({rate:,.0f})": rate >= args.min_rate,
        f"broker RSS under {args.broker_bound_mib:.0f} MiB (peak {broker_peak:.0f})": broker_peak
        < args.broker_bound_mib,
        f"other services within {args.flat_mib:.0f} MiB": all(
            g < args.flat_mib for n, g in growth.items() if n != "broker"
        ),
        f"0 events lost ({lost:,} of {accepted:,} accepted missing; {current:,} distinct loaded)": lost == 0,
        f"ClickHouse lag p95 under {args.lag_p95_s:.0f} s every sample (max {max(lags, default=0):.2f})": all(
            lag < args.lag_p95_s for lag in lags
        ),
    }
    console.print(
        f"{run.requests * BATCH:,} events in {sent_s:.0f} s = {rate:,.0f} events/s, "
        f"{run.non_2xx} non-2xx; growth first→last sample (MiB): "
        + ", ".join(f"{n} {g:+.0f}" for n, g in growth.items())
    )
    for label, ok in checks.items():
        console.print(f"{'[green]PASS' if ok else '[red]FAIL'}[/] {label}")
    png = ARTIFACTS / "soak-rss.png"
    plot(run, png, f"pravis up soak: {run.requests * BATCH:,} events, broker on {args.broker_storage}")
    console.print(f"plot: {png}")
    if not all(checks.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
