"""`pravis opportunities`: the improvement opportunities ranked as the product page shows them, and the
evidence of one of them (docs/queries.md "Improvement opportunities")."""

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pravis_local.settings import settings

console = Console()


def _cell(value: Any, percent: bool) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{value:.0%}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _table(
    title: str,
    columns: list[str],
    rows: list[tuple],
    shown: tuple[str, ...] | None = None,
    percent: tuple[str, ...] = (),
) -> Table:
    picked = [c for c in columns if shown is None or c in shown]
    table = Table(*picked, title=title)
    for row in rows:
        named = dict(zip(columns, row, strict=True))
        table.add_row(*(_cell(named[c], c in percent) for c in picked))
    return table


def opportunities(
    project: Annotated[str, typer.Option(help="project id")] = "default",
    first: Annotated[datetime | None, typer.Option("--from", formats=["%Y-%m-%d"], help="first day")] = None,
    last: Annotated[
        datetime | None, typer.Option("--to", formats=["%Y-%m-%d"], help="last day (today)")
    ] = None,
    evidence: Annotated[
        str | None, typer.Option(help="also show the evidence of feature:<name> or intent:<intent>")
    ] = None,
    url: Annotated[
        str | None, typer.Option(envvar="PRAVIS_CLICKHOUSE_URL", help="ClickHouse HTTP URL")
    ] = None,
) -> None:
    """Features and voice intents ranked worst first by the documented score, with each row's evidence;
    `--evidence` lists one subject's lowest-rated feedback and the failures counted against it."""
    from pravis_rollups.clickhouse import connect
    from pravis_schemas.opportunities import (
        SCORE_FORMULA,
        SHARE_COLUMNS,
        SHOWN_COLUMNS,
        failure_evidence_sql,
        feedback_evidence_sql,
        parse_subject,
        ranked_sql,
    )

    try:
        subject = parse_subject(evidence) if evidence else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--evidence") from exc
    to_day: date = last.date() if last else datetime.now(UTC).date()
    from_day: date = first.date() if first else to_day - timedelta(days=29)
    if from_day > to_day:
        raise typer.BadParameter("--from must not be after --to", param_hint="--from")
    view = {"project": project, "date_from": from_day, "date_to": to_day}
    url = url or f"http://{settings.host}:{settings.warehouse_port}/{settings.warehouse_database}"
    with connect(url) as client, console.status(f"ranking {project} {from_day}..{to_day}"):
        ranked = client.query(ranked_sql(), parameters=view)
        shown = [
            _table(
                f"Improvement opportunities, {project}, {from_day} to {to_day}",
                ranked.column_names,
                ranked.result_rows,
                ("opportunity", *SHOWN_COLUMNS),
                SHARE_COLUMNS,
            )
        ]
        if subject is not None:
            kind, name = subject
            for title, (sql, parameters) in (
                ("Lowest-rated feedback", feedback_evidence_sql(kind)),
                ("Failures counted against it", failure_evidence_sql(kind)),
            ):
                result = client.query(sql, parameters={**view, **parameters, "subject": name})
                shown.append(_table(f"{title}: {kind} {name!r}", result.column_names, result.result_rows))
    for table in shown:
        console.print(table)
    console.print(SCORE_FORMULA)
