"""Scheduler cycle, weekly feedback report and its webhook, and the `pravis rollup` / `pravis report`
commands, on synthetic data inserted straight into the warehouse; the webhook is a real HTTP server on
127.0.0.1."""

import asyncio
import json
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pravis_local.cli import app
from pravis_local.synthetic import Dataset, SyntheticConfig, generate, json_rows, parse_iso
from pravis_rollups import clickhouse, feedback_report
from pravis_rollups.jobs import drop_stale_staging
from pravis_rollups.rollups import ROLLUPS
from pravis_rollups.scheduler import Scheduler
from pravis_rollups.settings import Settings
from prometheus_client import REGISTRY
from typer.testing import CliRunner

START = date(2024, 3, 4)  # a Monday
CONFIG = SyntheticConfig(seed=3, users=20, days=14, start=START, late_rate=0)


class Webhook:
    """Records every POST; answers 503 to the first `failures` of them, then 200."""

    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.failures = failures
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                status = 503 if hook.attempts <= hook.failures else 200
                if status == 200:
                    hook.bodies.append(json.loads(body))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/pravis"

    def __enter__(self) -> "Webhook":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate(CONFIG)


@pytest.fixture(scope="module")
def url(clickhouse_server: str, dataset: Dataset) -> str:
    url = f"{clickhouse_server}/pravis_report_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    with clickhouse.connect(url) as client:
        clickhouse.insert_json_rows(client, "events", json_rows(dataset.events + dataset.duplicates))
        clickhouse.insert_json_rows(client, "feedback_scored", json_rows(dataset.scored_feedback))
    return url


@pytest.fixture
def client(url: str) -> Iterator[Any]:
    with clickhouse.connect(url) as client:
        yield client


def feedback_of_week(dataset: Dataset, project: str, monday: date) -> list[dict]:
    return [
        e
        for e in dataset.events
        if e["event_type"] == "feedback"
        and e["project_id"] == project
        and monday <= parse_iso(e["timestamp"]).date() < monday + timedelta(days=7)
    ]


def test_weekly_report_numbers_come_from_the_events(client, dataset: Dataset, tmp_path: Path) -> None:
    week = START + timedelta(days=7)
    report = feedback_report.build(client, week)

    assert [p.project_id for p in report.projects] == sorted(CONFIG.projects)
    for project in report.projects:
        rows = feedback_of_week(dataset, project.project_id, week)
        previous = feedback_of_week(dataset, project.project_id, START)
        assert project.feedback == len(rows)
        assert project.avg_rating == pytest.approx(sum(r["rating"] for r in rows) / len(rows))
        assert project.previous_feedback == len(previous)
        per_day: dict[date, int] = defaultdict(int)
        for r in rows:
            per_day[parse_iso(r["timestamp"]).date()] += 1
        assert {d.day: d.feedback for d in project.days} == dict(per_day)
        ratings = [r.rating for r in project.lowest]
        assert ratings == sorted(ratings) and ratings[0] == min(r["rating"] for r in rows)
        assert all(r.ai_event_types for r in project.lowest)
        terms = dict(project.terms)
        assert "slow" in terms and not set(terms) & {"the", "and", "too"}

    written = feedback_report.write(report, tmp_path)
    markdown = written.markdown.read_text()
    assert written.markdown.name == "feedback-2024-W11.md" and written.html.name == "feedback-2024-W11.html"
    assert "# Feedback summary 2024-W11 (2024-03-11 to 2024-03-17)" in markdown
    assert "### Lowest-rated interactions" in markdown and "### Top complaint terms" in markdown
    assert "<h3>Ratings trend</h3>" in written.html.read_text()


def test_report_webhook_is_retried_until_the_server_takes_it(client, tmp_path: Path) -> None:
    report = feedback_report.build(client, START + timedelta(days=7))
    with Webhook(failures=2) as hook:
        written = feedback_report.write(report, tmp_path, hook.url)

    assert written.notified == 200 and hook.attempts == 3
    [body] = hook.bodies
    assert body["text"].startswith("*Feedback summary 2024-W11")
    assert body["report"]["html"] == str(written.html.resolve())
    assert {p["project_id"] for p in body["report"]["projects"]} == set(CONFIG.projects)


def test_scheduler_cycle_on_report_day_recomputes_and_reports(url: str, client, tmp_path: Path) -> None:
    today = START + timedelta(days=14)  # the Monday after the data
    with Webhook() as hook:
        scheduler = Scheduler(
            Settings(
                clickhouse_url=url, data_dir=tmp_path, report_webhook_url=hook.url, rollup_recompute_days=3
            )
        )
        cycle = scheduler.cycle(client, today)

    assert (cycle.first, cycle.last, cycle.report_week) == (
        today - timedelta(3),
        today - timedelta(1),
        START + timedelta(7),
    )
    assert (tmp_path / "reports" / "feedback-2024-W11.html").exists()
    assert len(hook.bodies) == 1
    recomputed = client.query(
        "SELECT job, min(partition), max(partition) FROM rollup_runs FINAL "
        "WHERE job = 'daily_active_users' GROUP BY job"
    ).result_rows
    assert recomputed and recomputed[0][2] == cycle.last
    assert scheduler.last_recorded_cycle(client) is not None


def test_cli_backfill_and_report(url: str, client, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "rollup",
            "--from",
            "2024-03-04",
            "--to",
            "2024-03-10",
            "--job",
            "daily_active_users",
            "--url",
            url,
            "--as-of",
            "2024-03-17",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "daily_active_users" in result.output and "user_activity_daily" in result.output
    days = client.query(
        "SELECT count() FROM daily_active_users WHERE day BETWEEN '2024-03-04' AND '2024-03-10'"
    ).result_rows[0][0]
    assert days == 7 * len(CONFIG.projects)

    bad = runner.invoke(app, ["rollup", "--from", "2024-03-10", "--to", "2024-03-04", "--url", url])
    assert bad.exit_code != 0

    with Webhook() as hook:
        result = runner.invoke(
            app,
            [
                "report",
                "feedback",
                "--week",
                "2024-03-13",
                "--url",
                url,
                "--out",
                str(tmp_path),
                "--webhook",
                hook.url,
            ],
        )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "feedback-2024-W11.md").exists() and "webhook answered 200" in result.output


def test_staging_tables_left_by_a_dead_run_are_dropped(client) -> None:
    client.command("CREATE TABLE _staging_feedback_daily_deadbeef AS feedback_daily")
    assert drop_stale_staging(client) == []  # younger than a day: maybe a run in progress
    time.sleep(1.1)

    assert drop_stale_staging(client, older_than=timedelta(0)) == ["_staging_feedback_daily_deadbeef"]
    assert not client.query("EXISTS TABLE _staging_feedback_daily_deadbeef").result_rows[0][0]


async def test_a_restarted_scheduler_exports_its_last_recorded_cycle(clickhouse_server: str, tmp_path: Path):
    """The missed-run rule (deploy/prometheus) reads the gauge: after a restart it must not read "never"."""
    url = f"{clickhouse_server}/pravis_restart_{secrets.token_hex(4)}"
    clickhouse.migrate(url)
    last = datetime.now(UTC).replace(microsecond=123000)  # today's cycle already ran before the restart
    with clickhouse.connect(url) as client:
        client.insert(
            "rollup_runs",
            [[ROLLUPS[-1].table, last.date(), 1, last]],
            ["job", "partition", "rows", "computed_at"],
        )
    scheduler = Scheduler(Settings(clickhouse_url=url, data_dir=tmp_path, experiment_refresh_s=3600))
    task = asyncio.create_task(scheduler.run())
    try:
        deadline = time.monotonic() + 60
        while (
            REGISTRY.get_sample_value("pravis_scheduler_last_success_timestamp_seconds") != last.timestamp()
        ):
            assert time.monotonic() < deadline and not task.done(), (
                "the gauge never showed the recorded cycle"
            )
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
