"""The improvement opportunities' ranked list and evidence against one exact full scan, on the same data in
the same run (docs/scaling.md "Improvement opportunities").

`python -m bench.opportunities [--events 1000000] [--rounds 2]`: synthetic events over 30 days (the dataset
of bench/funnels.py, inserted straight into `events`, no sentiment scores), a saved funnel over the size guide
with its `funnel_daily`, then, after the background merges settle, each query `--rounds` times, fastest kept:
the baseline `GROUP BY` over `events FINAL` (bench/warehouse.py's), the ranked list over 30 and over 7 days,
and the evidence of one feature (its lowest-rated feedback, its failures by pattern). Printed and written to
artifacts/bench/opportunities.json.
"""

import argparse
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pravis_rollups import clickhouse
from pravis_rollups.jobs import run_rollups
from pravis_schemas.funnels import FUNNEL_COLUMNS
from pravis_schemas.opportunities import failure_evidence_sql, feedback_evidence_sql, ranked_sql

from bench.funnels import BASELINE_SQL, PROJECT, best_of, report
from bench.rollups_persons import insert_synthetic, on_time_config, scratch_warehouse
from bench.warehouse import settle
from tests.opportunity_model import FUNNEL  # the size-guide funnel: one definition for test and bench
from tests.support import services

ARTIFACT = Path(__file__).resolve().parent.parent / "artifacts" / "bench" / "opportunities.json"
SUBJECT = "voice_search"
"""A feature the synthetic feedback's `context` names, so its evidence has rows."""


def main() -> None:
    parser = argparse.ArgumentParser("python -m bench.opportunities", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="about this many events")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    config = on_time_config(args.events, args.days, args.seed)
    start, last = config.start, config.start + timedelta(days=args.days - 1)
    warehouse, server = scratch_warehouse("opportunities")
    url = f"{server}/bench_opportunities"
    try:
        services.wait_for_http(f"{server}/ping", warehouse.popen)
        clickhouse.migrate(url)
        events = insert_synthetic(url, config)
        month = {"project": PROJECT, "date_from": start, "date_to": last}
        week = {**month, "date_from": last - timedelta(days=6)}
        feedback, feedback_parameters = feedback_evidence_sql("feature")
        failures, failure_parameters = failure_evidence_sql("feature")
        queries = {
            "baseline: GROUP BY over events FINAL": (BASELINE_SQL, {}),
            "ranked list, 30 days": (ranked_sql(), month),
            "ranked list, 7 days": (ranked_sql(), week),
            "lowest-rated feedback of a feature, 30 days": (
                feedback,
                {**month, **feedback_parameters, "subject": SUBJECT},
            ),
            "failures of a feature by pattern, 30 days": (
                failures,
                {**month, **failure_parameters, "subject": SUBJECT},
            ),
        }
        with clickhouse.connect(url, send_receive_timeout=3600) as client:
            clickhouse.refresh_identity_merges(client)
            row = [PROJECT, FUNNEL.key, 1, FUNNEL.model_dump_json(), datetime.now(UTC)]
            client.insert("funnels", [row], column_names=FUNNEL_COLUMNS)
            run_rollups(client, start, last, ["funnel_daily"])
            settle(client)
            client.command(
                "SELECT count() FROM events FINAL FORMAT Null"
            )  # the page cache, not a query's cost
            results = best_of(client, warehouse.popen.pid, queries, args.rounds)
    finally:
        warehouse.stop()
    report(results, events, args.days, ARTIFACT)


if __name__ == "__main__":
    main()
