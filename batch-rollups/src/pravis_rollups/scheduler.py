"""Scheduler worker: every day at `rollup_at` (UTC) recompute all rollups for the last `rollup_recompute_days`
complete days, and on `report_weekday` write last week's feedback report and announce it on the webhook.

`python -m pravis_rollups.scheduler` runs until stopped (health on /healthz, Prometheus on /metrics); `--once`
runs one cycle now and exits. A cycle missed while the worker was down runs as soon as it starts again: the
last cycle is read from `rollup_runs`, so the state survives restarts and lives with the data.
"""

import argparse
import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic as time_monotonic

import structlog
from clickhouse_connect.driver.client import Client
from pravis_schemas.logs import configure_logging
from prometheus_client import Counter, Gauge, Histogram
from tenacity import AsyncRetrying, wait_exponential

from pravis_rollups import clickhouse, feedback_report
from pravis_rollups.experiment_results import refresh_results
from pravis_rollups.jobs import drop_stale_staging, recompute_window, run_rollups
from pravis_rollups.ops import run_with_ops
from pravis_rollups.report import last_complete_week
from pravis_rollups.rollups import ROLLUPS, RollupOptions
from pravis_rollups.segment_refresh import refresh_segments
from pravis_rollups.settings import Settings, settings

log = structlog.get_logger("pravis.scheduler")
CYCLES = Counter("pravis_scheduler_cycles_total", "Scheduler cycles", ["outcome"])
LAST_SUCCESS = Gauge("pravis_scheduler_last_success_timestamp_seconds", "End of the last successful cycle")
CYCLE_SECONDS = Histogram(
    "pravis_scheduler_cycle_seconds", "Duration of one cycle", buckets=(1, 5, 15, 60, 300, 900, 3600)
)


def last_due(now: datetime, at: time) -> datetime:
    """The latest scheduled moment at or before `now`."""
    today = datetime.combine(now.date(), at, UTC)
    return today if today <= now else today - timedelta(days=1)


def next_due(now: datetime, at: time) -> datetime:
    """The first scheduled moment strictly after `now`."""
    return last_due(now, at) + timedelta(days=1)


@dataclass(frozen=True)
class Cycle:
    today: date
    first: date
    last: date
    report_week: date | None


def plan_cycle(today: date, recompute_days: int, report_weekday: int) -> Cycle:
    first, last = recompute_window(today, recompute_days)
    report_week = last_complete_week(today) if today.weekday() == report_weekday else None
    return Cycle(today, first, last, report_week)


class Scheduler:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = asyncio.Event()
        self.last_cycle: datetime | None = None
        self.last_error: str | None = None
        self.segments_due = 0.0
        """Monotonic time of the next segment refresh."""

    def cycle(self, client: Client, today: date) -> Cycle:
        """Run one cycle (blocking): the recompute window, then the weekly report if today is report day."""
        plan = plan_cycle(today, self.settings.rollup_recompute_days, self.settings.report_weekday)
        options = RollupOptions(
            as_of=plan.last,
            repeat_window_s=self.settings.rollup_repeat_window_s,
            reporting_currency=self.settings.reporting_currency,
        )
        if dropped := drop_stale_staging(client):
            log.warning("dropped staging tables of runs that died", tables=dropped)
        results = run_rollups(client, plan.first, plan.last, options=options)
        log.info(
            "rollups computed",
            first=str(plan.first),
            last=str(plan.last),
            steps=len(results),
            rows=sum(r.rows for r in results),
            seconds=round(sum(r.seconds for r in results), 2),
        )
        if plan.report_week is not None:
            report = feedback_report.build(client, plan.report_week)
            written = feedback_report.write(
                report, self.settings.reports_dir, self.settings.report_webhook_url
            )
            log.info("feedback report written", path=str(written.html), webhook_status=written.notified)
        return plan

    def last_recorded_cycle(self, client: Client) -> datetime | None:
        """When the last rollup of a complete cycle last ran (the cycle runs ROLLUPS in order)."""
        rows = client.query(
            "SELECT max(computed_at), count() FROM rollup_runs WHERE job = {job:String}",
            parameters={"job": ROLLUPS[-1].table},
        ).result_rows
        latest, count = rows[0]
        return latest.replace(tzinfo=UTC) if count else None

    async def run(self, once: bool = False) -> None:
        async for attempt in AsyncRetrying(wait=wait_exponential(multiplier=0.5, max=30)):
            with attempt:
                await asyncio.to_thread(
                    clickhouse.migrate, self.settings.clickhouse_url, self.settings.retention
                )
                client = await asyncio.to_thread(clickhouse.connect, self.settings.clickhouse_url)
        self.ready.set()
        try:
            if once:
                await self._run_cycle(client, datetime.now(UTC))
                return
            self.last_cycle = await asyncio.to_thread(self.last_recorded_cycle, client)
            if self.last_cycle is not None:
                # A restart after the day's cycle must not read as "never succeeded" (the missed-run rule).
                LAST_SUCCESS.set(self.last_cycle.timestamp())
            log.info("scheduler started", at=str(self.settings.rollup_at), last_cycle=str(self.last_cycle))
            while True:
                now = datetime.now(UTC)
                due = last_due(now, self.settings.rollup_at)
                if self.last_cycle is None or self.last_cycle < due:
                    await self._run_cycle(client, now)
                    continue
                await self._refresh_experiments(client)
                await self._refresh_segments(client)
                wait_s = (next_due(now, self.settings.rollup_at) - now).total_seconds()
                segments_s = max(0.0, self.segments_due - time_monotonic())
                await asyncio.sleep(min(wait_s, self.settings.experiment_refresh_s, segments_s))
        finally:
            client.close()

    async def _refresh_experiments(self, client: Client) -> None:
        """Experiment results are read while experiments run, so they refresh far more often than rollups."""
        try:
            written = await asyncio.to_thread(
                refresh_results, client, reporting_currency=self.settings.reporting_currency
            )
            log.info("experiment results refreshed", rows=written)
        except Exception:
            log.exception("experiment results refresh failed; next try at the next wake-up")

    async def _refresh_segments(self, client: Client) -> None:
        """Segment members every `segment_refresh_s`: surveys target from them (docs/surveys.md)."""
        if time_monotonic() < self.segments_due:
            return
        self.segments_due = time_monotonic() + self.settings.segment_refresh_s
        try:
            result = await asyncio.to_thread(refresh_segments, client)
            log.info(
                "segments refreshed",
                segments=result.segments,
                members=result.members,
                seconds=round(result.seconds, 2),
            )
        except Exception:
            log.exception("segment refresh failed; next try at the next refresh time")

    async def _run_cycle(self, client: Client, now: datetime) -> None:
        began = datetime.now(UTC)
        try:
            await asyncio.to_thread(self.cycle, client, now.date())
        except Exception as exc:
            CYCLES.labels("failed").inc()
            self.last_error = str(exc)[:500]
            log.exception("cycle failed; retrying in a minute")
            await asyncio.sleep(60)
            return
        self.last_cycle, self.last_error = datetime.now(UTC), None
        CYCLES.labels("ok").inc()
        LAST_SUCCESS.set(self.last_cycle.timestamp())
        CYCLE_SECONDS.observe((self.last_cycle - began).total_seconds())


async def serve(settings: Settings, once: bool = False) -> None:
    scheduler = Scheduler(settings)
    if once:
        await scheduler.run(once=True)
        return

    def details() -> dict:
        return {
            "last_cycle": scheduler.last_cycle.isoformat() if scheduler.last_cycle else None,
            "last_error": scheduler.last_error,
        }

    host, port = settings.scheduler_health_host, settings.scheduler_health_port
    await run_with_ops(scheduler.run(), scheduler.ready, host, port, details)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        "python -m pravis_rollups.scheduler", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--once", action="store_true", help="run one cycle now and exit")
    args = parser.parse_args(argv)
    configure_logging(settings.log_format)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, once=args.once))


if __name__ == "__main__":
    main()
