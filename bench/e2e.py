"""Whole stack: the embedded `pravis up` stack under wrk, from the gateway to rows in ClickHouse.

`make bench` runs `python -m bench.e2e` (60 s of load). The stack is started as `bench.soak` starts it (free
ports, rate limit off) and driven with its wrk script, which gives every event of every request an event_id of
its own. Reported: events/s sustained, the ClickHouse lag p95 (`inserted_at - received_at`) of the events
sent, whether every accepted event reached ClickHouse, and the CPU seconds each service used during the load
(also per million events: what a shared machine's other load changes least), and that CPU per event in each of
`--segments` equal parts of the run: a service whose cost grows with the data already stored shows it there
(the embedded broker's fetches do: docs/scaling.md). `--set NAME=VALUE` passes a
setting to every service (e.g. `--set PRAVIS_STREAM_FETCH_MIN_BYTES=65536`), to compare settings run by run.
Targets in docs/scaling.md.
"""

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import psutil
from pravis_rollups.clickhouse import connect
from rich.table import Table

from bench.soak import BATCH, SERVICES, Stack, body_template, console, service_processes, wrk_segment


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of a service and its children (uvicorn workers, tansu under its wrapper)."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += sum(p.cpu_times()[:2])
        except psutil.Error:
            continue
    return total


def service_cpu(supervisor: psutil.Process) -> dict[str, float]:
    return {name: cpu_seconds(process) for name, process in service_processes(supervisor).items()}


def used_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: seconds - before.get(name, 0.0) for name, seconds in after.items()}


def loaded_events(clickhouse_url: str) -> int:
    with connect(clickhouse_url) as client:
        return int(client.command("SELECT uniqExact(event_id) FROM events WHERE project_id = 'default'"))


def lag_p95_s(clickhouse_url: str) -> float | None:
    """p95 of `inserted_at - received_at` over every event of the run."""
    with connect(clickhouse_url) as client:
        value = client.command(
            "SELECT quantile(0.95)(dateDiff('millisecond', received_at, inserted_at)) FROM events "
            "WHERE project_id = 'default'"
        )
    return None if value in ("nan", "", None) else float(value) / 1000


def wait_for_count(clickhouse_url: str, accepted: int, timeout_s: float) -> tuple[int, float]:
    """(distinct events loaded, seconds waited) once all `accepted` are in, or when the count stops moving
    for `timeout_s` (then some are missing)."""
    began = last_change = time.monotonic()
    previous = -1
    while (current := loaded_events(clickhouse_url)) < accepted:
        now = time.monotonic()
        if current != previous:
            previous, last_change = current, now
        elif now - last_change > timeout_s:
            break
        time.sleep(0.5)
    return current, time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before the measured run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--segments", type=int, default=3, help="parts of the run to report CPU per event of")
    parser.add_argument("--target-rate", type=float, default=40_000.0, help="events/s (docs/scaling.md)")
    parser.add_argument("--target-lag-s", type=float, default=5.0, help="ClickHouse lag p95 (seconds)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a PRAVIS_ setting")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install -y wrk (make bench installs it)")
    settings = dict(item.split("=", 1) for item in args.set)
    if bad := [name for name in settings if not name.startswith("PRAVIS_")]:
        sys.exit(f"--set takes PRAVIS_ settings only: {', '.join(bad)}")

    work = Path(tempfile.mkdtemp(prefix="pravis-e2e-"))
    body = work / "body.json"
    body.write_text(body_template())
    stack = Stack.start(work, settings)
    try:
        supervisor = stack.wait_until_up()
        console.print(f"stack up, logs in {stack.log}; {args.warmup:g} s warm-up, then {args.seconds:g} s")
        warm_requests, warm_non_2xx = wrk_segment(
            stack.gateway, stack.key, body, args.warmup, args.connections, offset=1
        )
        cpu_marks = [service_cpu(supervisor)]
        segment_requests: list[int] = []
        began = time.monotonic()
        requests = non_2xx = 0
        for _ in range(args.segments):
            done, failed = wrk_segment(
                stack.gateway,
                stack.key,
                body,
                args.seconds / args.segments,
                args.connections,
                offset=warm_requests + requests + 1,
            )
            requests, non_2xx = requests + done, non_2xx + failed
            segment_requests.append(done)
            cpu_marks.append(service_cpu(supervisor))
        load_s = time.monotonic() - began
        cpu_used = used_between(cpu_marks[0], cpu_marks[-1])
        accepted = (warm_requests - warm_non_2xx + requests - non_2xx) * BATCH
        loaded, caught_up_s = wait_for_count(stack.clickhouse_url, accepted, timeout_s=30.0)
        lag = lag_p95_s(stack.clickhouse_url)
    finally:
        stack.stop()

    events = requests * BATCH
    rate = events / load_s
    segments = [
        (used_between(before, after), done * BATCH)
        for before, after, done in zip(cpu_marks[:-1], cpu_marks[1:], segment_requests, strict=True)
    ]
    table = Table(
        "service",
        "CPU s",
        "CPU s per M events (µs/event)",
        *(f"part {n} µs/event" for n in range(1, len(segments) + 1)),
        title=f"CPU during {load_s:.0f} s",
    )
    for name in [*(n for n in SERVICES if n in cpu_used), "all"]:
        used = sum(cpu_used.values()) if name == "all" else cpu_used[name]
        parts = [
            (sum(part.values()) if name == "all" else part.get(name, 0.0)) / max(sent, 1) * 1e6
            for part, sent in segments
        ]
        table.add_row(name, f"{used:.1f}", f"{used / events * 1e6:.1f}", *(f"{p:.1f}" for p in parts))
    console.print(table)
    load_average = ", ".join(f"{v:.1f}" for v in psutil.getloadavg())
    console.print(
        f"{events:,} events in {load_s:.0f} s = {rate:,.0f} events/s, {non_2xx} non-2xx; "
        f"{loaded:,} of {accepted:,} accepted in ClickHouse {caught_up_s:.1f} s after the load stopped; "
        f"lag p95 {'-' if lag is None else f'{lag:.2f}'} s; load average {load_average}"
        + (f"; settings {settings}" if settings else "")
    )
    checks = {
        f"every accepted event in ClickHouse ({loaded:,} of {accepted:,})": loaded >= accepted,
        f"{args.target_rate:,.0f} events/s sustained ({rate:,.0f})": rate >= args.target_rate,
        f"ClickHouse lag p95 under {args.target_lag_s:g} s": lag is not None and lag < args.target_lag_s,
    }
    for label, ok in checks.items():
        console.print(f"{'[green]PASS' if ok else '[red]FAIL'}[/] {label}")
    # Throughput and lag are targets a shared or smaller machine may miss; losing an event is a bug.
    if loaded < accepted:
        sys.exit(1)


if __name__ == "__main__":
    main()
