"""Funnels and paths against one exact full scan, on the same data in the same run (targets: plain funnel
≤ 2x, with a breakdown ≤ 3x, top 50 four-event paths ≤ 3x the scan; docs/scaling.md).

`python -m bench.funnels [--events 10000000] [--rounds 2]`: synthetic events over 30 days
(`pravis_local.synthetic`, the dataset of bench/warehouse.py, inserted straight into `events`), then, after
the background merges settle, each query `--rounds` times, fastest kept: the baseline `GROUP BY` over
`events FINAL` (bench/warehouse.py's), a 4-step funnel over the 30 days (`pravis_schemas.funnel_sql`), the
same broken down by app_version and by ai_assistant (an AI request during the attempt), and the top 50
paths of four events from a page view. Peak server memory is the warehouse process's highest resident set
sampled every 20 ms during the query, and how far that is above what it held before (a floor: memory the
server already held is reused without showing). Printed and written to artifacts/bench/funnels.json.
"""

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pravis_rollups import clickhouse
from pravis_schemas.funnel_sql import funnel_sql, paths_sql
from pravis_schemas.funnels import AI_BREAKDOWN, FunnelDefinition
from rich.console import Console
from rich.table import Table

from bench.rollups_persons import synthetic_run, warm

console = Console(width=120)
ARTIFACT = Path(__file__).resolve().parent.parent / "artifacts" / "bench" / "funnels.json"
BASELINE_SQL = (
    "SELECT project_id, toDate(timestamp) AS day, event_type, count(), uniqExact(distinct_id) "
    "FROM events FINAL GROUP BY project_id, day, event_type"
)
FUNNEL = FunnelDefinition(
    key="bench",
    steps=[
        {"event_type": "page_view"},
        {"event_type": "feature_use"},
        {"event_type": "voice_request"},
        {"event_type": "button_click", "filters": [{"property": "button_id", "equals": "buy"}]},
    ],
    window_s=1800,
)
PROJECT = "default"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def measured(pid: int, action: Callable[[], object]) -> tuple[float, int, int]:
    """(seconds, peak resident bytes of the server, and that peak above its level before) of `action`."""
    before = rss_bytes(pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes(pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.perf_counter()
    action()
    seconds = time.perf_counter() - began
    done.set()
    sampler.join()
    return seconds, peak[0], max(0, peak[0] - before)


def timed(client, pid: int, sql: str, parameters: dict) -> tuple[float, int, int]:
    """`measured` of one query."""
    return measured(pid, lambda: client.query(sql, parameters=parameters))


def best_of(
    client, pid: int, queries: dict[str, tuple[str, dict]], rounds: int
) -> dict[str, dict[str, float]]:
    """Each query (label -> SQL, parameters) `rounds` times in turn: its fastest time, highest memory."""
    results: dict[str, dict[str, float]] = {}
    for round_ in range(rounds):
        for label, (sql, parameters) in queries.items():
            console.print(f"round {round_ + 1}: {label}")
            seconds, peak, above = timed(client, pid, sql, parameters)
            best = results.setdefault(
                label, {"seconds": seconds, "peak_rss_bytes": peak, "peak_memory_bytes": above}
            )
            best["seconds"] = min(best["seconds"], seconds)
            best["peak_rss_bytes"] = max(best["peak_rss_bytes"], peak)
            best["peak_memory_bytes"] = max(best["peak_memory_bytes"], above)
    return results


def report(results: dict[str, dict[str, float]], events: int, days: int, artifact: Path) -> None:
    """Print the results with their ratio to the baseline scan and write them to `artifact`."""
    baseline = results["baseline: GROUP BY over events FINAL"]["seconds"]
    table = Table(
        "query", "seconds", "x baseline", "server peak RSS (MiB)", "above before (MiB)",
        title=f"{events:,} events",
    )  # fmt: skip
    for label, result in results.items():
        result["ratio"] = result["seconds"] / baseline
        table.add_row(
            label,
            f"{result['seconds']:.2f}",
            f"{result['ratio']:.2f}",
            f"{result['peak_rss_bytes'] / 2**20:.0f}",
            f"{result['peak_memory_bytes'] / 2**20:.0f}",
        )
    console.print(table)
    artifact.parent.mkdir(parents=True, exist_ok=True)
    artifact.write_text(json.dumps({"events": events, "days": days, "results": results}, indent=2))
    console.print(f"written to {artifact}")


def main() -> None:
    with synthetic_run("funnels", __doc__.splitlines()[0], 10_000_000) as run:
        dates = {"date_from": run.first, "date_to": run.last}
        queries = {
            "baseline: GROUP BY over events FINAL": (BASELINE_SQL, {}),
            "4-step funnel, 30 days": funnel_sql(FUNNEL, PROJECT),
            "same, by app_version": funnel_sql(FUNNEL, PROJECT, "app_version"),
            "same, by ai_assistant": funnel_sql(FUNNEL, PROJECT, AI_BREAKDOWN),
            "top 50 paths of 4 events": paths_sql(PROJECT, "page_view", depth=3, window_s=1800, limit=50),
        }
        with clickhouse.connect(run.url, send_receive_timeout=3600) as client:
            clickhouse.refresh_identity_merges(client)
            warm(client)
            queries = {label: (sql, {**parameters, **dates}) for label, (sql, parameters) in queries.items()}
            results = best_of(client, run.warehouse_pid, queries, run.args.rounds)
    report(results, run.events, run.args.days, ARTIFACT)


if __name__ == "__main__":
    main()
