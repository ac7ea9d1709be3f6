"""`pravis experiment ...`: refresh and print A/B test results from the warehouse."""

from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from pravis_local.settings import settings

experiment_app = typer.Typer(help="A/B experiments: results from the warehouse", no_args_is_help=True)
console = Console()

UrlOption = Annotated[str | None, typer.Option(envvar="PRAVIS_CLICKHOUSE_URL", help="ClickHouse HTTP URL")]
ProjectOption = Annotated[str, typer.Option(help="Project the experiment belongs to")]


def _url(url: str | None) -> str:
    return url or f"http://{settings.host}:{settings.warehouse_port}/{settings.warehouse_database}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:+.1%}"


def _mean(row: dict[str, Any]) -> str:
    if row["goal_kind"] == "conversion":
        return _num(row["conversion_rate"])
    sd = "" if row["variance"] is None else f"±{row['variance'] ** 0.5:.3g}"
    money = ""
    if row.get("currency"):  # a money goal, in the reporting currency; orders of unrated currencies apart
        money = f" {row['currency']}" + (f", {row['unconverted']} unconverted" if row["unconverted"] else "")
    return _num(row["mean"]) + sd + money


def _num(value: float | None, spec: str = ".3g") -> str:
    return "" if value is None else format(value, spec)


def results_table(key: str, rows: list[dict[str, Any]]) -> Table:
    first = rows[0]
    srm = "n/a" if first["srm_p_value"] is None else f"{first['srm_p_value']:.3g}"
    flag = " [bold red]SAMPLE RATIO MISMATCH[/]" if first["srm_flag"] else ""
    table = Table(
        "goal",
        "variant",
        "users",
        "conv.",
        "rate|mean±sd",
        f"lift ({first['confidence_level']:.0%} CI)",
        "p",
        title=f"{key} v{first['definition_version']}, computed {first['computed_at']:%Y-%m-%d %H:%M} UTC",
        caption=f"* control. SRM p-value {srm}{flag}; users who saw several variants (excluded): "
        f"{first['multi_variant_users']}",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for row in rows:
        low, high = row["lift_ci_low"], row["lift_ci_high"]
        lift = "" if low is None else f"{_pct(row['lift'])} ({low:+.0%}..{high:+.0%})"
        table.add_row(
            row["goal"] or "(exposure)",
            row["variant"] + ("*" if row["is_control"] else ""),
            str(row["users"]),
            "" if row["conversions"] is None else str(row["conversions"]),
            _mean(row),
            lift,
            _num(row["p_value"], ".3g"),
        )
    return table


@experiment_app.command("results")
def results(
    key: str,
    project: ProjectOption = "default",
    refresh: Annotated[bool, typer.Option(help="Recompute before printing")] = True,
    url: UrlOption = None,
) -> None:
    """Print an experiment's results per variant and goal (recomputed first unless --no-refresh)."""
    from pravis_rollups.clickhouse import connect
    from pravis_rollups.experiment_results import latest_results, refresh_results

    with connect(_url(url)) as client:
        if refresh:
            refresh_results(client, project_id=project, keys=[key])
        rows = latest_results(client, project, key)
    if not rows:
        console.print(f"no results for experiment {key!r} in project {project!r}")
        raise typer.Exit(1)
    console.print(results_table(key, rows))


@experiment_app.command("refresh")
def refresh_all(project: Annotated[str | None, typer.Option()] = None, url: UrlOption = None) -> None:
    """Recompute `experiment_results` for every running or stopped experiment (what the scheduler runs)."""
    from pravis_rollups.clickhouse import connect
    from pravis_rollups.experiment_results import refresh_results

    with connect(_url(url)) as client:
        written = refresh_results(client, project_id=project)
    console.print(f"refreshed {len(written)} experiment(s), {sum(written.values())} rows")
