"""`pravis`: the operator's command line for the whole pipeline."""

import asyncio
import sys
from typing import Annotated

import typer
from pravis_gateway.keys import KeyKind, KeyStore
from rich.console import Console
from rich.table import Table

from pravis_local.settings import settings

app = typer.Typer(help="Pravis analytics pipeline", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="Project API keys", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
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
    from pravis_rollups.clickhouse import connect

    url = url or f"http://{settings.host}:{settings.warehouse_port}/{settings.warehouse_database}"
    text = sys.stdin.read() if query == "-" else query
    with connect(url) as client:
        if fmt != "table":
            sys.stdout.write(client.raw_query(text, fmt=fmt).decode())
            return
        result = client.query(text)
        table = Table(*result.column_names)
        for row in result.result_rows:
            table.add_row(*(str(v) for v in row))
        console.print(table)


@app.command()
def migrate(url: Annotated[str | None, typer.Option(envvar="PRAVIS_CLICKHOUSE_URL")] = None) -> None:
    """Apply the warehouse migrations that have not run yet."""
    from pravis_rollups.clickhouse import migrate as apply

    url = url or f"http://{settings.host}:{settings.warehouse_port}/{settings.warehouse_database}"
    applied = apply(url)
    console.print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")


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
