"""`pravis topics create`: the pipeline's topics on any Kafka (embedded, Apache Kafka, Event Hubs), with
partition counts from settings. The compose stack's init job runs it before any worker starts."""

import asyncio
from typing import Annotated

import typer
from pravis_schemas.kafka_security import KafkaSecuritySettings, kafka_client_options
from pydantic_settings import BaseSettings, SettingsConfigDict
from rich.console import Console

from pravis_local.broker import default_partitions, ensure_topics

topics_app = typer.Typer(help="Kafka topics", no_args_is_help=True)
console = Console()


class KafkaCliSettings(BaseSettings, KafkaSecuritySettings):
    """Kafka connection of the operator commands (`pravis topics`, `pravis alerts`); SASL/TLS options
    (PRAVIS_KAFKA_SECURITY_PROTOCOL, ...) come from KafkaSecuritySettings."""

    model_config = SettingsConfigDict(
        env_prefix="PRAVIS_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    kafka_bootstrap: str = "127.0.0.1:9092"
    events_partitions: int = 6
    """Partitions of `events`: the most loader / stream instances that share the work (docs/scaling.md)."""
    topic_replication_factor: int = 1


@topics_app.command("create")
def create(
    bootstrap: Annotated[str | None, typer.Option(help="default PRAVIS_KAFKA_BOOTSTRAP")] = None,
    events_partitions: Annotated[
        int | None, typer.Option(help="default PRAVIS_EVENTS_PARTITIONS (6)")
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
