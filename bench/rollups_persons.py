"""The rollup set counting persons against the rollup set of another revision counting raw ids, on the same
data in the same warehouse, in one run (target ≤ 1.3x; docs/scaling.md); both run the base's rollups only.

`python -m bench.rollups_persons --base /tmp/base [--events 2000000] [--rounds 2]`, where `/tmp/base` is a
checkout of the revision to compare with (`git worktree add --detach /tmp/base main`). The synthetic data
(`pravis_local.synthetic`, with a fifth of the persons seen under several ids: logins, second users on a
device, aliases) goes once into a scratch database through the loader's insert path; each revision's
database is filled from it the same way (`INSERT INTO events_ingest SELECT`), so the identity graph is built
by the migrations' views as in production, and both tables are written alike. Each revision runs its own
migrations and rollup code in a subprocess (its `src` folders first on the path); the rounds alternate the
two, and the fastest round of each is reported, in wall seconds and in the warehouse's CPU seconds (which
other work on a shared machine disturbs less). Printed and written to artifacts/bench/rollups_persons.json.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pravis_local.synthetic import SyntheticConfig, events_by_user, json_rows
from pravis_rollups import clickhouse
from rich.console import Console
from rich.table import Table

from bench.warehouse import cpu_seconds, settle
from tests.support import services

console = Console(width=120)
HERE = Path(__file__).resolve().parent.parent
ARTIFACT = HERE / "artifacts" / "bench" / "rollups_persons.json"
EVENTS_PER_USER = 157
"""Events one synthetic user makes over 30 days with the generator's defaults (bench/warehouse.py)."""
RUN_ROLLUPS = """
import json, os, sys, time
from datetime import date
from pravis_rollups import clickhouse
from pravis_rollups.jobs import Runner, plan
from pravis_rollups.rollups import ROLLUPS, RollupOptions

def warehouse_cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

url, first, last = sys.argv[1], sys.argv[2], sys.argv[3]
if first == "migrate":
    clickhouse.migrate(url)
elif first == "names":
    print(json.dumps([rollup.table for rollup in ROLLUPS]))
else:
    first, last, pid = date.fromisoformat(first), date.fromisoformat(last), int(sys.argv[4])
    names = json.loads(sys.argv[5])
    with clickhouse.connect(url) as client:
        options = RollupOptions(as_of=last)
        began, steps = time.perf_counter(), {}
        with Runner(client, options) as runner:
            for step in plan(client, first, last, names, options=options):
                before = warehouse_cpu(pid)
                runner.run(step)
                table = step.rollup.table
                steps[table] = steps.get(table, 0.0) + warehouse_cpu(pid) - before
        print(json.dumps({"seconds": time.perf_counter() - began, "cpu_per_rollup": steps}))
"""
"""Run by each revision: migrate its database (`migrate -`), list its rollups (`names -`), or time the named
rollups (a JSON list) over [first, last] (wall seconds, and the warehouse's CPU seconds per rollup:
user_activity_daily's include filling the scan)."""


def revision(checkout: Path, url: str, first: str, last: str, *more: str) -> str:
    """Run RUN_ROLLUPS with `checkout`'s packages ahead of the installed ones; its output."""
    paths = [str(checkout / package / "src") for package in ("batch-rollups", "schemas")]
    done = subprocess.run(
        [sys.executable, "-c", RUN_ROLLUPS, url, first, last, *more],
        env={"PYTHONPATH": ":".join(paths), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def copy_events(client, source: str, target: str) -> None:
    """Fill `target`.events from `source`.events through `target`'s insert path (its views run)."""
    columns = [
        row[0]
        for row in client.query(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = 'events_ingest'",
            parameters={"db": target},
        ).result_rows
    ]
    listed = ", ".join(f"`{c}`" for c in columns)
    client.command(f"INSERT INTO `{target}`.events_ingest ({listed}) SELECT {listed} FROM `{source}`.events")


def on_time_config(events: int, days: int, seed: int) -> SyntheticConfig:
    """About `events` synthetic events over the `days` before today, on time and without copies (what
    `events_by_user` makes), a quarter of the users with a journey across ids."""
    users = max(10, events // EVENTS_PER_USER // len(SyntheticConfig().projects))
    start = datetime.now(UTC).date() - timedelta(days=days)
    return SyntheticConfig(
        seed=seed, start=start, days=days, users=users, journeys=users // 4, duplicate_rate=0, late_rate=0
    )


def scratch_warehouse(name: str) -> tuple[services.Process, str]:
    """A warehouse started on a fresh data directory of its own: (its process, its server URL)."""
    work = Path(tempfile.mkdtemp(prefix=f"pravis-bench-{name}-"))
    port = services.free_port()
    warehouse = services.Process(
        "bench-warehouse",
        [sys.executable, "-m", "pravis_local.warehouse", "--port", str(port), "--data-dir", str(work)],
        work,
    ).start()
    return warehouse, f"http://127.0.0.1:{port}"


def insert_synthetic(url: str, config: SyntheticConfig) -> int:
    """Generate `config`'s events into `url`'s `events` (straight, not through Kafka); how many there were."""
    events = 0
    # A 200k-row insert can wait minutes for a loaded warehouse: the client's 300 s default ended a run.
    with clickhouse.connect(url, send_receive_timeout=3600) as client, console.status("generating") as status:
        batch: list[bytes] = []
        for rows in events_by_user(config):
            batch += json_rows(rows)
            if len(batch) >= 200_000:
                clickhouse.insert_json_rows(client, "events", batch)
                events += len(batch)
                batch = []
                status.update(f"generating: {events:,} events")
        clickhouse.insert_json_rows(client, "events", batch)
    return events + len(batch)


@dataclass(frozen=True)
class SyntheticRun:
    args: argparse.Namespace
    first: date
    last: date
    url: str
    warehouse_pid: int
    events: int


@contextmanager
def synthetic_run(name: str, description: str, default_events: int) -> Iterator[SyntheticRun]:
    """The setup the query benchmarks (bench/funnels.py, bench/opportunities.py) share: their arguments
    (`--events`, `--days`, `--rounds`, `--seed`), and a scratch warehouse, stopped on exit, migrated and
    holding about `--events` synthetic events over the `--days` before today."""
    parser = argparse.ArgumentParser(f"python -m bench.{name}", description=description)
    parser.add_argument("--events", type=int, default=default_events, help="about this many events")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    config = on_time_config(args.events, args.days, args.seed)
    warehouse, server = scratch_warehouse(name)
    url = f"{server}/bench_{name}"
    try:
        services.wait_for_http(f"{server}/ping", warehouse.popen)
        clickhouse.migrate(url)
        events = insert_synthetic(url, config)
        last = config.start + timedelta(days=args.days - 1)
        yield SyntheticRun(args, config.start, last, url, warehouse.popen.pid, events)
    finally:
        warehouse.stop()


def warm(client) -> None:
    """Wait for the background merges, then read `events FINAL` once: the page cache, not a query's cost."""
    settle(client)
    client.command("SELECT count() FROM events FINAL FORMAT Null")


def main() -> None:
    parser = argparse.ArgumentParser("python -m bench.rollups_persons", description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="checkout of the revision to compare with")
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    config = on_time_config(args.events, args.days, args.seed)
    start = config.start
    first, last = start.isoformat(), (start + timedelta(days=args.days - 1)).isoformat()
    warehouse, server = scratch_warehouse("persons")
    urls = {"persons": f"{server}/bench_persons", "base": f"{server}/bench_base"}
    try:
        services.wait_for_http(f"{server}/ping", warehouse.popen)
        clickhouse.migrate(f"{server}/bench_source")
        events = insert_synthetic(f"{server}/bench_source", config)
        revision(HERE, urls["persons"], "migrate", "-")
        revision(args.base, urls["base"], "migrate", "-")
        with clickhouse.connect(f"{server}/bench_source") as client:
            for name in urls:
                copy_events(client, "bench_source", f"bench_{name}")
        with clickhouse.connect(urls["persons"]) as client:
            clickhouse.refresh_identity_merges(client)
            settle(client)
            overrides = client.query("SELECT count() FROM person_overrides").result_rows[0][0]
        # The base's rollups only: those added since (funnels, revenue, ...) are not the cost of persons.
        names = revision(args.base, urls["base"], "names", "-").strip()
        seconds: dict[str, list[float]] = {"persons": [], "base": []}
        cpu: dict[str, list[float]] = {"persons": [], "base": []}
        per_rollup: dict[str, list[dict[str, float]]] = {"persons": [], "base": []}
        for round_ in range(args.rounds):
            for name, checkout in (("persons", HERE), ("base", args.base)):
                began = cpu_seconds(warehouse.popen.pid)
                run = json.loads(revision(checkout, urls[name], first, last, str(warehouse.popen.pid), names))
                seconds[name].append(run["seconds"])
                per_rollup[name].append(run["cpu_per_rollup"])
                cpu[name].append(cpu_seconds(warehouse.popen.pid) - began)
                took = f"{seconds[name][-1]:.2f} s, warehouse CPU {cpu[name][-1]:.2f} s"
                console.print(f"round {round_ + 1}: {name} {took}")
    finally:
        warehouse.stop()
    result = {
        "events": events,
        "days": args.days,
        "persons_with_several_ids": config.journeys * len(config.projects),
        "person_overrides_rows": overrides,
        "rollups": json.loads(names),
        "rollups_persons_s": seconds["persons"],
        "rollups_base_s": seconds["base"],
        "warehouse_cpu_persons_s": cpu["persons"],
        "warehouse_cpu_base_s": cpu["base"],
        "ratio_best": min(seconds["persons"]) / min(seconds["base"]),
        "ratio_best_cpu": min(cpu["persons"]) / min(cpu["base"]),
        "warehouse_cpu_per_rollup_persons_s": per_rollup["persons"],
        "warehouse_cpu_per_rollup_base_s": per_rollup["base"],
    }
    table = Table(title=f"rollup set, persons vs {args.base}: {events:,} events, {args.days} days")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row("ids mapped to another person (person_overrides)", f"{overrides:,}", "")
    table.add_row("rollup set counting persons (best)", f"{min(seconds['persons']):.2f} s", "")
    table.add_row("rollup set counting ids, base (best)", f"{min(seconds['base']):.2f} s", "")
    table.add_row("persons / base", f"{result['ratio_best']:.2f}x", "≤ 1.3x")
    table.add_row("warehouse CPU, persons (best)", f"{min(cpu['persons']):.2f} s", "")
    table.add_row("warehouse CPU, base (best)", f"{min(cpu['base']):.2f} s", "")
    table.add_row("persons / base, warehouse CPU", f"{result['ratio_best_cpu']:.2f}x", "≤ 1.3x")
    console.print(table)
    rollups = Table(title="warehouse CPU per rollup, best round of each (s)")
    for column in ("rollup", "this checkout", "base"):
        rollups.add_column(column, justify="left" if column == "rollup" else "right")
    for rollup in dict.fromkeys([*per_rollup["persons"][0], *per_rollup["base"][0]]):
        best = {
            name: min((r[rollup] for r in runs if rollup in r), default=None)
            for name, runs in per_rollup.items()
        }
        rollups.add_row(
            rollup, *(f"{best[n]:.2f}" if best[n] is not None else "-" for n in ("persons", "base"))
        )
    console.print(rollups)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(result, indent=2))
    console.print(f"written to {ARTIFACT}")


if __name__ == "__main__":
    main()
