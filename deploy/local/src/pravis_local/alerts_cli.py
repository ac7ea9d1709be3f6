"""`pravis alerts [--follow]`: print the anomaly alerts of the `alerts` topic, live with --follow."""

import asyncio
import contextlib
from typing import Annotated

import typer
from aiokafka import AIOKafkaConsumer
from pravis_schemas import topics
from pravis_schemas.kafka_security import kafka_client_options
from pravis_schemas.messages import Alert, AlertStatus, Severity
from pydantic import ValidationError
from rich.console import Console

from pravis_local.settings import settings
from pravis_local.topics_cli import KafkaCliSettings

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)
STYLES = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "blue"}


def render(alert: Alert) -> str:
    labels = " ".join(f"{k}={v}" for k, v in sorted(alert.labels.items()))
    if alert.status is AlertStatus.RESOLVED:
        status = "[green]RESOLVED[/]"
        when = alert.resolved_at or alert.window_end
    else:
        status = f"[{STYLES[alert.severity]}]{alert.severity.value.upper():8}[/]"
        when = alert.window_end
    return (
        f"{when:%Y-%m-%d %H:%M:%S}Z {status} {alert.project_id} [bold]{alert.metric}[/] {labels} "
        f"observed {alert.observed:.4g} expected {alert.expected:.4g}  [dim]{alert.alert_id}[/]"
    )


async def _read(bootstrap: str, follow: bool, from_beginning: bool, project: str | None, raw: bool) -> None:
    consumer = AIOKafkaConsumer(
        topics.ALERTS,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest" if from_beginning or not follow else "latest",
        enable_auto_commit=False,
        **kafka_client_options(KafkaCliSettings()),
    )
    await consumer.start()
    try:
        if follow:
            errors.print(f"[dim]following {topics.ALERTS} on {bootstrap} (Ctrl-C stops)[/]")
        while True:
            batches = await consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    try:
                        alert = Alert.model_validate_json(record.value)
                    except ValidationError as exc:
                        where = f"partition {record.partition} offset {record.offset}"
                        reason = exc.errors()[0]["msg"]
                        errors.print(f"[dim]skipped a message that is not an Alert ({where}): {reason}[/]")
                        continue
                    if project and alert.project_id != project:
                        continue
                    if raw:
                        print(record.value.decode(), flush=True)
                    else:
                        console.print(render(alert), soft_wrap=True)
            if not follow and not batches:
                return
    finally:
        await consumer.stop()


def alerts(
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing new alerts as they come")
    ] = False,
    from_beginning: Annotated[
        bool, typer.Option(help="with --follow, print the alerts already on the topic first")
    ] = False,
    project: Annotated[str | None, typer.Option(help="only this project's alerts")] = None,
    json: Annotated[bool, typer.Option("--json", help="print each alert message as JSON")] = False,
    bootstrap: Annotated[str | None, typer.Option(envvar="PRAVIS_KAFKA_BOOTSTRAP")] = None,
) -> None:
    """Anomaly alerts (firing and resolved) from the stream workers; --follow prints them live."""
    bootstrap = bootstrap or f"{settings.host}:{settings.broker_port}"
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_read(bootstrap, follow, from_beginning, project, json))
