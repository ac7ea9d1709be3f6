"""`pravis topics create`: the pipeline's topics on any Kafka (embedded, Apache Kafka, Event Hubs), with
partition counts from settings. The compose stack's init job runs it before any worker starts."""

import asyncio
import contextlib
from typing import Annotated

import typer
from pravis_schemas.kafka_security import KafkaSettings, kafka_client_options
from pravis_schemas.settings import PravisSettings
from rich.console import Console

from pravis_local.broker import default_partitions, ensure_topics
from pravis_local.settings import EVENTS_PARTITIONS
from pravis_local.tail import tail as tail_rows

topics_app = typer.Typer(help="Kafka topics", no_args_is_help=True)
console = Console()


class KafkaCliSettings(PravisSettings, KafkaSettings):
    """Kafka connection of the operator commands (`pravis topics`, `pravis alerts`)."""

    events_partitions: int = EVENTS_PARTITIONS
    topic_replication_factor: int = 1


@topics_app.command("create")
def create(
    bootstrap: Annotated[str | None, typer.Option(help="default PRAVIS_KAFKA_BOOTSTRAP")] = None,
    events_partitions: Annotated[
        int | None, typer.Option(help=f"default PRAVIS_EVENTS_PARTITIONS ({EVENTS_PARTITIONS})")
    ] = None,
    replication_factor: Annotated[
        int | None, typer.Option(help="default PRAVIS_TOPIC_REPLICATION_FACTOR (1; 3 on a real cluster)")
    ] = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for the broker to answer")] = 60.0,
) -> None:
    """Create the missing topics (existing ones are left as they are) and list what was created."""
    settings = KafkaCliSettings()
    partitions = default_partitions(events_partitions or settings.events_partitions)
    created = asyncio.run(
        ensure_topics(
            bootstrap or settings.kafka_bootstrap,
            partitions,
            timeout_s=wait,
            replication_factor=replication_factor or settings.topic_replication_factor,
            **kafka_client_options(settings),
        )
    )
    for topic, count in partitions.items():
        state = "created" if topic in created else "exists"
        console.print(f"{topic:<18} {count:>3} partitions  {state}")


@topics_app.command("tail")
def tail(
    topic: Annotated[str, typer.Argument(help="topic name, e.g. events, events.rejected, alerts")],
    from_beginning: Annotated[
        bool, typer.Option(help="start at the oldest record kept (default: the end)")
    ] = False,
    partition: Annotated[int | None, typer.Option(help="only this partition (default: all)")] = None,
    grep: Annotated[str | None, typer.Option(help="only rows matching this regular expression")] = None,
    max_rows: Annotated[int | None, typer.Option("--max", min=1, help="stop after this many rows")] = None,
    follow: Annotated[
        bool, typer.Option(help="keep waiting for new records (--no-follow: stop at the end)")
    ] = True,
    bootstrap: Annotated[str | None, typer.Option(help="default PRAVIS_KAFKA_BOOTSTRAP")] = None,
) -> None:
    """Print a topic's records, one event per line, as `partition:offset key row`; joins no consumer group and
    commits nothing (replaces kcat, which cannot talk to the embedded broker)."""
    settings = KafkaCliSettings()

    async def run() -> None:
        printed = 0
        rows = tail_rows(
            bootstrap or settings.kafka_bootstrap,
            topic,
            partition=partition,
            from_beginning=from_beginning,
            follow=follow,
            grep=grep,
            **kafka_client_options(settings),
        )
        async for row in rows:
            print(f"{row.partition}:{row.offset} {row.key or '-'} {row.text}", flush=True)
            printed += 1
            if max_rows is not None and printed >= max_rows:
                break
        await rows.aclose()

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    except LookupError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
