"""`pravis alerts [--follow]`: print the anomaly alerts of the `alerts` topic, live with --follow;
`pravis alerts silence|list|expire`: the silences every stream worker honours (topic `alerts.silences`)."""

import asyncio
import contextlib
import getpass
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pravis_schemas import topics
from pravis_schemas.kafka_security import kafka_client_options
from pravis_schemas.messages import Alert, AlertStatus, Severity
from pravis_schemas.silences import ALERT_METRICS, MAX_LABELS, Silence
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

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


alerts_app = typer.Typer(
    help="Anomaly alerts (firing and resolved) from the stream workers, and their silences",
    invoke_without_command=True,
)


@alerts_app.callback()
def alerts(
    ctx: typer.Context,
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
    if ctx.invoked_subcommand is not None:
        return
    bootstrap = bootstrap or f"{settings.host}:{settings.broker_port}"
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_read(bootstrap, follow, from_beginning, project, json))


DURATION = re.compile(r"(\d+)([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SILENCE = timedelta(days=30)
"""A longer silence is more likely forgotten than meant; renew it instead."""
Bootstrap = Annotated[str | None, typer.Option(envvar="PRAVIS_KAFKA_BOOTSTRAP")]


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `1h30m`, `2d`: whole numbers with units s/m/h/d, more than zero, at most 30 days."""
    if not text or DURATION.sub("", text):
        raise typer.BadParameter(f"{text!r} is not a duration such as 30m, 1h or 1h30m (units s, m, h, d)")
    duration = timedelta(seconds=sum(int(n) * UNIT_SECONDS[unit] for n, unit in DURATION.findall(text)))
    if not timedelta(0) < duration <= MAX_SILENCE:
        raise typer.BadParameter(f"{text!r} must be more than 0 and at most {MAX_SILENCE.days} days")
    return duration


def parse_labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise typer.BadParameter(f"{pair!r} is not key=value (e.g. endpoint=/api/v1/cart)")
        if key in labels:
            raise typer.BadParameter(f"label {key!r} is given twice")
        labels[key] = value
    if len(labels) > MAX_LABELS:
        raise typer.BadParameter(f"at most {MAX_LABELS} labels")
    return labels


def parse_start(text: str, now: datetime) -> datetime:
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO-8601 time such as 2026-12-01T22:00+00:00") from None
    if start.tzinfo is None:
        raise typer.BadParameter(f"{text!r} has no UTC offset (add Z or +00:00)")
    if start < now:
        raise typer.BadParameter(f"{text!r} is in the past; leave --starts out to start now")
    return start.astimezone(UTC)


def _bootstrap(bootstrap: str | None) -> str:
    return bootstrap or f"{settings.host}:{settings.broker_port}"


async def read_silences(bootstrap: str) -> dict[str, Silence]:
    """Every silence as it stands (the latest record of each id), read up to the topic's end."""
    options = kafka_client_options(KafkaCliSettings())
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topics.SILENCES])
    finally:
        await admin.close()
    if description.get("error_code") or not description["partitions"]:
        errors.print(f"topic {topics.SILENCES!r} is missing on {bootstrap}: run `pravis topics create`")
        raise typer.Exit(1)
    tps = [TopicPartition(topics.SILENCES, p["partition"]) for p in description["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        found: dict[str, Silence] = {}
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    with contextlib.suppress(ValidationError):  # not a silence: nothing to list or expire
                        silence = Silence.model_validate_json(record.value)
                        found[silence.silence_id] = silence
        return found
    finally:
        await consumer.stop()


async def publish_silence(bootstrap: str, silence: Silence) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", **kafka_client_options(KafkaCliSettings())
    )
    await producer.start()
    try:
        await producer.send_and_wait(topics.SILENCES, silence.to_json(), key=silence.silence_id.encode())
    finally:
        await producer.stop()


def _render_labels(silence: Silence) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(silence.labels.items()))


@alerts_app.command("silence")
def silence(
    project: Annotated[str, typer.Option(help="the project whose alerts to hold back")],
    metric: Annotated[str, typer.Option(help=f"one of {', '.join(ALERT_METRICS)}")],
    duration: Annotated[str, typer.Option("--for", help="how long, e.g. 30m, 1h, 1h30m, 2d (at most 30d)")],
    comment: Annotated[str, typer.Option(help="why, for whoever sees the silence (e.g. the deploy)")],
    label: Annotated[
        list[str] | None, typer.Option(help="only series with this label, key=value; repeatable")
    ] = None,
    starts: Annotated[
        str | None,
        typer.Option(help="a maintenance window ahead: its ISO-8601 start with a UTC offset (default: now)"),
    ] = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Hold back a series' alerts from every sink for a while; they are still detected and published on the
    `alerts` topic. Prints the silence id (for `pravis alerts expire`)."""
    if metric not in ALERT_METRICS:
        raise typer.BadParameter(f"{metric!r} is not a detector series; one of {', '.join(ALERT_METRICS)}")
    now = datetime.now(UTC)
    starts_at = parse_start(starts, now) if starts else now
    try:
        created = Silence(
            silence_id=str(uuid.uuid4()),
            project_id=project,
            metric=metric,
            labels=parse_labels(label or []),
            starts_at=starts_at,
            ends_at=starts_at + parse_duration(duration),
            created_by=getpass.getuser(),
            comment=comment,
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise typer.BadParameter(f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}") from None
    asyncio.run(publish_silence(_bootstrap(bootstrap), created))
    errors.print(
        f"silenced {project} {metric} {_render_labels(created)} until {created.ends_at:%Y-%m-%d %H:%M:%S}Z"
    )
    print(created.silence_id)  # alone on stdout, for scripts that expire it after a deploy


@alerts_app.command("list")
def list_silences(
    all_: Annotated[bool, typer.Option("--all", help="ended and expired silences too")] = False,
    project: Annotated[str | None, typer.Option(help="only this project's silences")] = None,
    bootstrap: Bootstrap = None,
) -> None:
    """The silences in force (with --all, the ended ones too)."""
    now = datetime.now(UTC)
    found = asyncio.run(read_silences(_bootstrap(bootstrap))).values()
    shown = [s for s in found if (all_ or s.ends_at > now) and (project is None or s.project_id == project)]
    table = Table("id", "project", "metric", "labels", "from", "until", "by", "comment", "state")
    for s in sorted(shown, key=lambda s: s.starts_at):
        state = "active" if s.active(now) else "pending" if s.starts_at > now else "ended"
        table.add_row(
            s.silence_id,
            s.project_id,
            s.metric,
            _render_labels(s),
            f"{s.starts_at:%Y-%m-%d %H:%M}Z",
            f"{s.ends_at:%Y-%m-%d %H:%M}Z",
            s.created_by,
            s.comment,
            state,
        )
    console.print(table if shown else "no silences" + ("" if all_ else " in force"))


@alerts_app.command("expire")
def expire(
    silence_id: Annotated[str, typer.Argument(help="the id `pravis alerts silence` printed")],
    bootstrap: Bootstrap = None,
) -> None:
    """End a silence now, or call off a maintenance window ahead: the series' alerts reach the sinks."""
    bootstrap = _bootstrap(bootstrap)
    now = datetime.now(UTC)
    found = asyncio.run(read_silences(bootstrap)).get(silence_id)
    if found is None:
        errors.print(f"no silence with id {silence_id}")
        raise typer.Exit(1)
    if found.ends_at <= now:
        errors.print(f"silence {silence_id} already ended at {found.ends_at:%Y-%m-%d %H:%M:%S}Z")
        raise typer.Exit(1)
    # A window still ahead is called off the same way: it ends now, before it began.
    ended = found.model_copy(update={"starts_at": min(found.starts_at, now), "ends_at": now})
    asyncio.run(publish_silence(bootstrap, ended))
    console.print(f"expired {silence_id} ({found.project_id} {found.metric} {_render_labels(found)})")
