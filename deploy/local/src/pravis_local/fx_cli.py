"""`pravis fx ...`: the exchange rates revenue_daily converts into the reporting currency with."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pravis_local.settings import settings

fx_app = typer.Typer(help="Exchange rates for the reporting currency (loaded from a file, never fetched)")
console = Console()

UrlOption = Annotated[str | None, typer.Option(envvar="PRAVIS_CLICKHOUSE_URL", help="ClickHouse HTTP URL")]
ReportingOption = Annotated[
    str,
    typer.Option("--reporting", envvar="PRAVIS_REPORTING_CURRENCY", help="currency the rates convert into"),
]


def _url(url: str | None) -> str:
    return url or f"http://{settings.host}:{settings.warehouse_port}/{settings.warehouse_database}"


@fx_app.command("load")
def load(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV: day,currency,rate")],
    reporting: ReportingOption = "EUR",
    url: UrlOption = None,
) -> None:
    """Load exchange rates: one unit of `currency` buys `rate` units of the reporting currency from `day` on.
    Re-loading a (currency, day) replaces its rate; recompute the affected days with `pravis rollup`."""
    from pravis_rollups.clickhouse import connect, migrate
    from pravis_rollups.fx import load_rates, parse_rates

    with path.open(newline="", encoding="utf-8") as lines:
        rates, errors = parse_rates(lines, reporting)
    if errors:
        for error in errors:
            console.print(f"[red]{path}:[/] {error}")
        console.print(f"nothing loaded: {len(errors)} bad line(s)")
        raise typer.Exit(1)
    url = _url(url)
    migrate(url)
    with connect(url) as client:
        load_rates(client, reporting, rates)
    table = Table("currency", "rates", "from", "to", title=f"loaded into {reporting.upper()}")
    for currency in sorted({r.currency for r in rates}):
        days = [r.day for r in rates if r.currency == currency]
        table.add_row(currency, str(len(days)), str(min(days)), str(max(days)))
    console.print(table)
