"""`pravis`: the operator's command line for the whole pipeline."""

import asyncio
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer
from pravis_gateway.keys import KeyKind, KeyStore
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pravis_local.alerts_cli import alerts_app
from pravis_local.experiments_cli import experiment_app
from pravis_local.funnels_cli import funnel_app
from pravis_local.fx_cli import fx_app
from pravis_local.opportunities_cli import opportunities
from pravis_local.settings import settings
from pravis_local.status_cli import status
from pravis_local.surveys_cli import survey_app
from pravis_local.topics_cli import topics_app

app = typer.Typer(help="Pravis analytics pipeline", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Project API keys", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
report_app = typer.Typer(help="Reports written to PRAVIS_DATA_DIR/reports", no_args_is_help=True)
app.add_typer(report_app, name="report")
console = Console()


@app.command()
def up() -> None:
    """Run the whole pipeline on the embedded stack (Tansu broker, chdb warehouse) until Ctrl-C."""
    from pravis_local.stack import up as run_stack

    asyncio.run(run_stack(settings))


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run; '-' reads it from stdin")],
    url: Annotated[
        str | None, typer.Option(envvar="PRAVIS_CLICKHOUSE_URL", help="ClickHouse HTTP URL")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, or any ClickHouse output format")] = "table",
) -> None:
    """Run SQL against the warehouse (embedded or any ClickHouse) and print the result."""
    from clickhouse_connect.driver.exceptions import Error as ClickHouseClientError
    from pravis_rollups.clickhouse import connect

    url = url or _warehouse_url()
    text = sys.stdin.read() if query == "-" else query
    try:
        with connect(url) as client:
            if fmt != "table":
                sys.stdout.write(client.raw_query(text, fmt=fmt).decode())
                return
            result = client.query(text)
    except ClickHouseClientError as exc:
        # The server's message (AUTHENTICATION_FAILED, a syntax error...) is what helps, not a traceback.
        Console(stderr=True).print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None
    table = Table(*result.column_names)
    for row in result.result_rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)


@app.command()
def migrate(url: Annotated[str | None, typer.Option(envvar="PRAVIS_CLICKHOUSE_URL")] = None) -> None:
    """Apply the warehouse migrations that have not run yet."""
    from pravis_rollups.clickhouse import migrate as apply
    from pravis_rollups.settings import Settings as RollupSettings

    applied = apply(url or _warehouse_url(), RollupSettings().retention)
    console.print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")


@app.command()
def retention(
    url: Annotated[str | None, typer.Option(envvar="PRAVIS_CLICKHOUSE_URL")] = None,
    horizon_days: Annotated[int, typer.Option(help="count rows expiring within this many days")] = 30,
) -> None:
    """What expires when: each table's retention, its oldest row and the rows expiring soon."""
    from pravis_rollups.clickhouse import connect
    from pravis_rollups.retention import report
    from pravis_rollups.settings import Settings as RollupSettings

    with connect(url or _warehouse_url()) as client:
        rows = report(client, RollupSettings().retention, horizon_days)
    table = Table("table", "age column", "kept (days)", "oldest row", f"expiring within {horizon_days} d")
    for row in rows:
        table.add_row(
            row["table"],
            row["column"],
            str(row["keep_days"]),
            str(row["oldest"] or "-"),
            str(row["expiring_within_horizon"]),
        )
    console.print(table)


def _warehouse_url() -> str:
    return settings.warehouse_url()


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


DAY = ["%Y-%m-%d"]
UrlOption = Annotated[str | None, typer.Option(envvar="PRAVIS_CLICKHOUSE_URL", help="ClickHouse HTTP URL")]


@app.command()
def rollup(
    date_from: Annotated[datetime, typer.Option("--from", formats=DAY, help="first day (UTC)")],
    date_to: Annotated[datetime, typer.Option("--to", formats=DAY, help="last day (UTC), included")],
    job: Annotated[
        list[str] | None, typer.Option(help="only this rollup table (repeatable); default: all")
    ] = None,
    as_of: Annotated[
        datetime | None,
        typer.Option(formats=DAY, help="last complete day for retention eligibility (default: yesterday)"),
    ] = None,
    repeat_window: Annotated[int, typer.Option(help="repeated-command window, seconds")] = 30,
    reporting_currency: Annotated[
        str, typer.Option(envvar="PRAVIS_REPORTING_CURRENCY", help="revenue_daily's reporting currency")
    ] = "EUR",
    chunk_days: Annotated[
        int,
        typer.Option(
            min=1,
            max=31,
            help="days computed together; their events are held once in server memory (~160 B/event)",
        ),
    ] = 31,
    url: UrlOption = None,
) -> None:
    """Compute (or recompute) the daily rollups for a date range; re-running a date replaces its rows."""
    from pravis_rollups.clickhouse import connect, migrate
    from pravis_rollups.jobs import Runner, plan
    from pravis_rollups.rollups import RollupOptions

    url = url or _warehouse_url()
    migrate(url)
    options = RollupOptions(
        as_of=_day(as_of), repeat_window_s=repeat_window, reporting_currency=reporting_currency.upper()
    )
    with connect(url) as client:
        try:
            steps = plan(client, date_from.date(), date_to.date(), job or None, options, chunk=chunk_days)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        totals: dict[str, list[float]] = {}
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Runner(client, options) as runner, Progress(*columns, console=console) as progress:
            task = progress.add_task("rollups", total=len(steps))
            for step in steps:
                first, last = step.partitions[0], step.partitions[-1]
                progress.update(task, description=f"{step.rollup.table} {first}..{last}")
                result = runner.run(step)
                entry = totals.setdefault(step.rollup.table, [0, 0, 0.0])
                entry[0] += len(step.partitions)
                entry[1] += result.rows
                entry[2] += result.seconds
                progress.advance(task)
    table = Table("rollup", "partitions", "rows", "seconds")
    for name, (partitions, rows, seconds) in totals.items():
        table.add_row(name, str(int(partitions)), str(int(rows)), f"{seconds:.2f}")
    console.print(table)


@app.command()
def demo(url: UrlOption = None) -> None:
    """Fill the warehouse with the synthetic demo dataset (March 2024), its rollups, alerts and experiment
    results, so the dashboards have something to show."""
    from pravis_local.demo import demo_resource_samples, seed

    url = url or _warehouse_url()
    dataset = seed(url)
    events = len(dataset.all_events()) + len(demo_resource_samples(dataset))
    typer.echo(f"loaded {events} events, {dataset.config.start} to {dataset.end}, into {url}")


@report_app.command("feedback")
def report_feedback(
    week: Annotated[
        datetime | None,
        typer.Option(formats=DAY, help="any day of the Monday-Sunday week (default: last complete week)"),
    ] = None,
    webhook: Annotated[
        str | None, typer.Option(envvar="PRAVIS_REPORT_WEBHOOK_URL", help="POST a summary here")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="directory (default: PRAVIS_DATA_DIR/reports)")] = None,
    url: UrlOption = None,
) -> None:
    """Write the weekly feedback summary (Markdown and HTML) and announce it on the webhook."""
    from pravis_rollups import feedback_report
    from pravis_rollups.clickhouse import connect, migrate
    from pravis_rollups.report import last_complete_week
    from pravis_rollups.rollups import monday

    url = url or _warehouse_url()
    migrate(url)
    week_start = last_complete_week(date.today()) if week is None else monday(week.date())
    with connect(url) as client:
        report = feedback_report.build(client, week_start)
    written = feedback_report.write(report, out or settings.data_dir / "reports", webhook)
    console.print(f"{report.title}\n  {written.markdown}\n  {written.html}")
    if written.notified is not None:
        console.print(f"  webhook answered {written.notified}")


def _store() -> KeyStore:
    return KeyStore(settings.data_dir / "keys.json")


@keys_app.command("create")
def keys_create(
    project: str = "default", kind: Annotated[str, typer.Option(help="write or secret")] = "write"
) -> None:
    """Create a key; it is printed once and stored only as a hash."""
    if kind not in ("write", "secret"):
        raise typer.BadParameter("kind must be 'write' or 'secret'")
    key_kind: KeyKind = "write" if kind == "write" else "secret"
    key, record = _store().create(project, key_kind)
    console.print(f"{key}\n[dim]id {record.key_id}, project {record.project_id}, {record.kind}[/]")


@keys_app.command("list")
def keys_list() -> None:
    table = Table("id", "project", "kind", "created", "revoked")
    for k in _store().list():
        table.add_row(k.key_id, k.project_id, k.kind, k.created_at, k.revoked_at or "")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    if not _store().revoke(key_id):
        console.print(f"no active key with id {key_id}")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")


app.add_typer(experiment_app, name="experiment")
app.add_typer(funnel_app, name="funnel")
app.add_typer(survey_app, name="survey")
app.add_typer(topics_app, name="topics")
app.add_typer(alerts_app, name="alerts")
app.add_typer(fx_app, name="fx")
app.command()(opportunities)
app.command()(status)
