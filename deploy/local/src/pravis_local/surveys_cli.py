"""`pravis survey ...`: save survey and segment definitions through the gateway's admin API (secret key),
refresh segment members, print a survey's results from the warehouse, and keep the feature-request board
(statuses set through the gateway, the ranking read from the warehouse)."""

import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from pravis_local.settings import settings

survey_app = typer.Typer(
    help="Surveys and segments: definitions, segment refresh, results", no_args_is_help=True
)
console = Console()

GatewayOption = Annotated[str | None, typer.Option(envvar="PRAVIS_GATEWAY_URL", help="Gateway base URL")]
SecretOption = Annotated[str, typer.Option(envvar="PRAVIS_SECRET_KEY", help="The project's secret key")]
UrlOption = Annotated[str | None, typer.Option(envvar="PRAVIS_CLICKHOUSE_URL", help="ClickHouse HTTP URL")]
FileArgument = Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The definition as JSON")]


def _gateway(url: str | None) -> str:
    return url or f"http://{settings.host}:{settings.gateway_port}"


def _warehouse(url: str | None) -> str:
    return url or f"http://{settings.host}:{settings.warehouse_port}/{settings.warehouse_database}"


def _accepted(response: httpx.Response) -> dict[str, Any]:
    """The body of a successful admin call; otherwise the error and each reason printed, exit 1."""
    body = response.json()
    if response.status_code >= 400:
        console.print(f"[red]{response.status_code}[/] {body.get('error')}")
        for reason in body.get("reasons", []):
            console.print(f"  {reason}")
        raise typer.Exit(1)
    return body


def _put(kind: str, key: str, file: Path, secret_key: str, gateway: str | None) -> None:
    response = httpx.put(
        f"{_gateway(gateway)}/api/v1/{kind}/{key}",
        json=json.loads(file.read_text()),
        headers={"X-API-Key": secret_key},
        timeout=30,
    )
    body = _accepted(response)
    state = "saved as" if body["created"] else "unchanged, still"
    console.print(f"{kind[:-1]} {key!r} {state} version {body['version']}")


@survey_app.command("put")
def put_survey(key: str, file: FileArgument, secret_key: SecretOption, gateway: GatewayOption = None) -> None:
    """Save a survey definition (JSON file) as its next version; invalid ones print a reason per field."""
    _put("surveys", key, file, secret_key, gateway)


@survey_app.command("segment")
def put_segment(
    key: str, file: FileArgument, secret_key: SecretOption, gateway: GatewayOption = None
) -> None:
    """Save a segment definition (JSON file); members follow at the next segment refresh."""
    _put("segments", key, file, secret_key, gateway)


@survey_app.command("show")
def show(
    key: str,
    secret_key: SecretOption,
    history: Annotated[bool, typer.Option(help="Every version")] = False,
    gateway: GatewayOption = None,
) -> None:
    """Print a survey's newest definition (or every version)."""
    response = httpx.get(
        f"{_gateway(gateway)}/api/v1/surveys/{key}",
        params={"history": history},
        headers={"X-API-Key": secret_key},
        timeout=30,
    )
    if response.status_code >= 400:
        console.print(f"[red]{response.status_code}[/] {response.json().get('error')}")
        raise typer.Exit(1)
    console.print_json(response.text)


@survey_app.command("refresh-segments")
def refresh(url: UrlOption = None) -> None:
    """Recompute every segment's members now (what the scheduler runs every PRAVIS_SEGMENT_REFRESH_S)."""
    from pravis_rollups.clickhouse import connect
    from pravis_rollups.segment_refresh import refresh_segments

    with connect(_warehouse(url)) as client, console.status("refreshing segments (one scan of events)"):
        result = refresh_segments(client)
    console.print(f"{result.segments} segment(s), {result.members} member ids in {result.seconds:.1f} s")


@survey_app.command("results")
def results(
    key: str,
    project: str = "default",
    url: UrlOption = None,
    texts_shown: int = 10,
    by_segment: Annotated[
        str | None, typer.Option(help="A rating/NPS question id: its figures per segment")
    ] = None,
) -> None:
    """Responses, response rate, NPS and average per question of each version, from survey_results_daily
    (as of the last rollup run), the average VADER sentiment of open-text questions, and the newest open-text
    answers with theirs."""
    from pravis_rollups.clickhouse import connect
    from pravis_rollups.survey_results import recent_text_answers, segment_results, survey_summary

    with connect(_warehouse(url)) as client:
        rows = survey_summary(client, project, key)
        texts = recent_text_answers(client, project, key, limit=texts_shown)
        per_segment = segment_results(client, project, key, by_segment) if by_segment else []
    if not rows:
        console.print(f"no results for survey {key!r} in project {project!r}")
        raise typer.Exit(1)
    table = Table(
        "version", "question", "shown", "answered", "rate", "responses", "avg", "NPS", "sentiment", title=key
    )
    for row in rows:
        table.add_row(
            *(
                _cell(row[c])
                for c in (
                    "version",
                    "question",
                    "shown",
                    "answered",
                    "response_rate",
                    "responses",
                    "avg_value",
                    "nps",
                    "avg_sentiment",
                )
            )
        )
    console.print(table)
    if texts:
        answers = Table(
            "time", "version", "question", "sentiment", "score", "answer", title="newest open-text answers"
        )
        for t in texts:
            cells = (
                t["timestamp"],
                t["version"],
                t["question"],
                t["sentiment_label"],
                t["sentiment_score"],
                t["text"],
            )
            answers.add_row(*map(_cell, cells))
        console.print(answers)
    if by_segment:
        segments = Table(
            "segment", "version", "answered", "responses", "avg", "NPS", title=f"{by_segment} per segment"
        )
        for s in per_segment:
            cells = (s["segment"], s["version"], s["answered"], s["responses"], s["avg_value"], s["nps"])
            segments.add_row(*map(_cell, cells))
        console.print(segments)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


@survey_app.command("request-status")
def request_status(
    title: Annotated[str, typer.Argument(help="The request's title, in any spelling users gave it")],
    status: Annotated[str, typer.Argument(help="open, planned or done")],
    secret_key: SecretOption,
    gateway: GatewayOption = None,
) -> None:
    """Set a feature request's status on the board (the gateway refuses other values with a reason)."""
    response = httpx.put(
        f"{_gateway(gateway)}/api/v1/feature-requests/status",
        json={"title": title, "status": status},
        headers={"X-API-Key": secret_key},
        timeout=30,
    )
    body = _accepted(response)
    console.print(f"{title!r} is now {body['status']!r}")


@survey_app.command("requests")
def requests(project: str = "default", limit: int = 50, url: UrlOption = None) -> None:
    """The feature-request board: ranked by votes, then by votes weighted by the voters' activity."""
    from pravis_rollups.clickhouse import connect
    from pravis_schemas.feature_requests import RANKING_SQL, ranking_parameters

    with connect(_warehouse(url)) as client:
        result = client.query(RANKING_SQL, parameters=ranking_parameters(project, limit))
    table = Table("request", "votes", "weighted", "status", title=f"feature requests of {project}")
    for _request, title, votes, weighted, status in result.result_rows:
        table.add_row(title, str(votes), str(weighted), status)
    console.print(table)
