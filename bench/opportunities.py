"""The improvement opportunities' ranked list and evidence against one exact full scan, on the same data in
the same run, before (from raw events) and after the opportunities rollups, and what refreshing those costs
(docs/scaling.md "Improvement opportunities").

`python -m bench.opportunities [--events 1000000] [--rounds 2]`: synthetic events over 30 days (the dataset
of bench/funnels.py, inserted straight into `events`, no sentiment scores), a saved funnel over the size guide
with its `funnel_daily`, then, after the background merges settle, each query `--rounds` times, fastest kept:
the baseline `GROUP BY` over `events FINAL` (bench/warehouse.py's), the ranked list over 30 and over 7 days
with no opportunities rollup (every day read raw) and the evidence of one feature (its lowest-rated feedback,
its failures by pattern); then the refresh of `opportunities_daily` and `opportunity_users_daily` (the two
alone, sharing one scan) over the 30 days and over the scheduler's 3 days, timed once each; then the ranked
list again, reading the rollups, and the baseline again. Printed and written to
artifacts/bench/opportunities.json.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pravis_rollups import clickhouse
from pravis_rollups.jobs import run_rollups
from pravis_schemas.funnels import FUNNEL_COLUMNS
from pravis_schemas.opportunities import (
    DAILY_TABLE,
    USERS_TABLE,
    failure_evidence_sql,
    feedback_evidence_sql,
    ranked_sql,
)

from bench.funnels import BASELINE_SQL, PROJECT, best_of, measured, report
from bench.rollups_persons import synthetic_run, warm
from tests.opportunity_model import FUNNEL  # the size-guide funnel: one definition for test and bench

ARTIFACT = Path(__file__).resolve().parent.parent / "artifacts" / "bench" / "opportunities.json"
SUBJECT = "voice_search"
"""A feature the synthetic feedback's `context` names, so its evidence has rows."""
ROLLUPS = [DAILY_TABLE, USERS_TABLE]
SCHEDULER_DAYS = 3
"""The scheduler's default recompute window (`PRAVIS_ROLLUP_RECOMPUTE_DAYS`)."""


def main() -> None:
    with synthetic_run("opportunities", __doc__.splitlines()[0], 1_000_000) as run:
        month = {"project": PROJECT, "date_from": run.first, "date_to": run.last}
        week = {**month, "date_from": run.last - timedelta(days=6)}
        feedback, feedback_parameters = feedback_evidence_sql("feature")
        failures, failure_parameters = failure_evidence_sql("feature")
        raw = {
            "baseline: GROUP BY over events FINAL": (BASELINE_SQL, {}),
            "ranked list, 30 days, raw": (ranked_sql(), month),
            "ranked list, 7 days, raw": (ranked_sql(), week),
            "lowest-rated feedback of a feature, 30 days": (
                feedback,
                {**month, **feedback_parameters, "subject": SUBJECT},
            ),
            "failures of a feature by pattern, 30 days": (
                failures,
                {**month, **failure_parameters, "subject": SUBJECT},
            ),
        }
        rolled = {
            "ranked list, 30 days, from the rollups": (ranked_sql(), month),
            "ranked list, 7 days, from the rollups": (ranked_sql(), week),
            "baseline again": (BASELINE_SQL, {}),
        }
        with clickhouse.connect(run.url, send_receive_timeout=3600) as client:
            clickhouse.refresh_identity_merges(client)
            row = [PROJECT, FUNNEL.key, 1, FUNNEL.model_dump_json(), datetime.now(UTC)]
            client.insert("funnels", [row], column_names=FUNNEL_COLUMNS)
            run_rollups(client, run.first, run.last, ["funnel_daily"])
            warm(client)
            results = best_of(client, run.warehouse_pid, raw, run.args.rounds)
            for label, first in (
                (f"refresh of the two rollups, {run.args.days} days", run.first),
                (
                    f"refresh of the two rollups, {SCHEDULER_DAYS} days",
                    run.last - timedelta(SCHEDULER_DAYS - 1),
                ),
            ):
                seconds, peak, above = measured(
                    run.warehouse_pid, lambda first=first: run_rollups(client, first, run.last, ROLLUPS)
                )
                results[label] = {"seconds": seconds, "peak_rss_bytes": peak, "peak_memory_bytes": above}
            warm(client)
            results |= best_of(client, run.warehouse_pid, rolled, run.args.rounds)
    report(results, run.events, run.args.days, ARTIFACT)


if __name__ == "__main__":
    main()
