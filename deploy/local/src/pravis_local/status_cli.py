"""`pravis status`: the embedded stack at a glance, for the on-call person: health, consumer lag, broker and
warehouse memory and disk, rows loaded in the last minute."""

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pravis_local.settings import settings
from pravis_local.status import (
    consumer_lag,
    health,
    health_urls,
    process_figures,
    rows_loaded_last_minute,
)

console = Console()


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.1f} MiB"


def status(
    url: Annotated[
        str | None, typer.Option(envvar="PRAVIS_CLICKHOUSE_URL", help="ClickHouse HTTP URL")
    ] = None,
    bootstrap: Annotated[str | None, typer.Option(help="default: the embedded broker's address")] = None,
) -> None:
    """Every service's health, consumer lag per group and partition, broker and warehouse memory and disk, and
    rows loaded in the last minute. Exits 1 when a service is unhealthy."""
    bootstrap = bootstrap or f"{settings.host}:{settings.broker_port}"
    url = url or f"http://{settings.host}:{settings.warehouse_port}/{settings.warehouse_database}"
    checks = asyncio.run(health(health_urls(settings) | {"broker": f"kafka://{bootstrap}"}))

    services = Table("service", "health", "answer", "url", title="services")
    for check in checks:
        services.add_row(
            check.service, "[green]ok[/]" if check.ok else "[red]down[/]", check.detail, check.url
        )
    console.print(services)

    figures = Table("process", "pid", "resident memory", "data on disk", title="broker and warehouse")
    for item in process_figures(settings):
        disk = "in memory" if item.disk_bytes is None else _mib(item.disk_bytes)
        figures.add_row(item.service, str(item.pid or "-"), _mib(item.rss_bytes), disk)
    console.print(figures)

    lag_table = Table("group", "topic", "partition", "committed", "end", "lag", title="consumer lag")
    try:
        for item in asyncio.run(consumer_lag(bootstrap)):
            lag_table.add_row(
                item.group, item.topic, str(item.partition), str(item.committed), str(item.end), str(item.lag)
            )
        console.print(lag_table)
    except Exception as exc:
        console.print(f"[red]consumer lag unavailable: {exc!r}[/]")

    try:
        console.print(f"rows loaded in the last minute: {rows_loaded_last_minute(url):,}")
    except Exception as exc:
        console.print(f"[red]rows loaded in the last minute unavailable: {exc!r}[/]")
    if not all(check.ok for check in checks):
        raise typer.Exit(1)
