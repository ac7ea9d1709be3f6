"""`pravis funnel define|show|list`: manage funnel definitions through the gateway's admin API (secret key)
and print a funnel's figures over a date range from the warehouse."""

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pravis_schemas.funnels import BREAKDOWNS
from rich import box
from rich.console import Console
from rich.table import Table

from pravis_local.settings import settings

funnel_app = typer.Typer(help="Funnels: definitions (gateway admin API) and figures", no_args_is_help=True)
console = Console()

GatewayOption = Annotated[str | None, typer.Option(envvar="PRAVIS_GATEWAY_URL", help="Gateway base URL")]
SecretOption = Annotated[
    str, typer.Option(envvar="PRAVIS_SECRET_KEY", help="A secret key of the project (pravis keys create)")
]
UrlOption = Annotated[str | None, typer.Option(envvar="PRAVIS_CLICKHOUSE_URL", help="ClickHouse HTTP URL")]


def _gateway(url: str | None) -> str:
    return url or f"http://{settings.host}:{settings.gateway_port}"


def _call(method: str, url: str, secret: str, **kwargs: Any) -> dict[str, Any]:
    """The gateway's JSON answer; its error reason (422 with what is wrong, 404, 503) ends the command."""
    response = httpx.request(method, url, headers={"X-API-Key": secret}, timeout=30, **kwargs)
    body = response.json()
    if response.status_code >= 400:
        console.print(f"[red]{response.status_code}[/] {body.get('error', body)}")
        raise typer.Exit(1)
    return body


def _num(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def steps_table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(
        "breakdown", "step", "reached", "from start", "from prev.", "dropped", "median s", "p90 s",
        title=title, box=box.SIMPLE_HEAD, pad_edge=False,
    )  # fmt: skip
    for row in rows:
        table.add_row(
            row["breakdown"],
            f"{row['step']}. {row['step_name']}",
            str(row["reached"]),
            _num(row["conversion_from_start"], ".1%"),
            _num(row["conversion_from_previous"], ".1%"),
            str(row["dropped"]),
            _num(row["median_from_previous_s"], ".1f"),
            _num(row["p90_from_previous_s"], ".1f"),
        )
    return table


@funnel_app.command("define")
def define(
    key: str,
    file: Annotated[Path, typer.Argument(help="JSON definition (docs/funnels.md), '-' for stdin")],
    secret_key: SecretOption,
    gateway: GatewayOption = None,
) -> None:
    """Save a definition as the funnel's next version (PUT /api/v1/funnels/KEY)."""
    text = typer.get_text_stream("stdin").read() if str(file) == "-" else file.read_text()
    body = _call("PUT", f"{_gateway(gateway)}/api/v1/funnels/{key}", secret_key, json=json.loads(text))
    state = "saved as" if body["created"] else "unchanged, still"
    console.print(f"funnel {key!r} {state} version {body['version']}")


@funnel_app.command("show")
def show(
    key: str,
    secret_key: SecretOption,
    gateway: GatewayOption = None,
    date_from: Annotated[date | None, typer.Option("--from", formats=["%Y-%m-%d"])] = None,
    date_to: Annotated[date | None, typer.Option("--to", formats=["%Y-%m-%d"])] = None,
    breakdown: Annotated[
        str | None,
        typer.Option(help=f"{', '.join(BREAKDOWNS)}, properties.x or variant:KEY (docs/funnels.md)"),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Print a funnel's newest definition; with --from (and --to), its figures over those days."""
    from pravis_rollups.clickhouse import connect
    from pravis_rollups.funnels import step_counts
    from pravis_schemas.funnels import StoredFunnel, check_breakdown

    try:
        check_breakdown(breakdown)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--breakdown") from exc
    body = _call("GET", f"{_gateway(gateway)}/api/v1/funnels/{key}", secret_key)
    stored = StoredFunnel.model_validate(
        {k: body[k] for k in ("project_id", "version", "created_at", "definition")}
    )
    console.print_json(data=body["definition"])
    if date_from is None:
        return
    last = date_to or date_from
    with connect(url or settings.warehouse_url) as client, console.status("computing the funnel"):
        rows = step_counts(client, stored, date_from, last, breakdown)
    console.print(steps_table(f"{key} v{stored.version}, entered {date_from}..{last}", rows))


@funnel_app.command("list")
def list_funnels(secret_key: SecretOption, gateway: GatewayOption = None) -> None:
    """The newest version of every funnel of the key's project."""
    body = _call("GET", f"{_gateway(gateway)}/api/v1/funnels", secret_key)
    table = Table(
        "key", "version", "steps", "window", "order", "count by", box=box.SIMPLE_HEAD, pad_edge=False
    )
    for funnel in body["funnels"]:
        d = funnel["definition"]
        steps = " → ".join(s.get("name") or s["event_type"] for s in d["steps"])
        table.add_row(d["key"], str(funnel["version"]), steps, f"{d['window_s']}s", d["order"], d["count_by"])
    console.print(table)
