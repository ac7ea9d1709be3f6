"""The gateway's only Kafka access: a producer that returns once the broker acknowledged every record."""

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from pravis_gateway.settings import Settings


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge in time; the caller must not report the events as accepted."""


class EventPublisher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            acks=settings.kafka_acks if settings.kafka_acks == "all" else int(settings.kafka_acks),
            enable_idempotence=settings.kafka_enable_idempotence,
            linger_ms=settings.kafka_linger_ms,
            request_timeout_ms=int(settings.kafka_ack_timeout_s * 1000),
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def publish(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Send (key, value) records and wait until Kafka acked all of them."""
        try:
            pending = [await self._producer.send(topic, value, key=key) for key, value in records]
            async with asyncio.timeout(self._settings.kafka_ack_timeout_s):
                await asyncio.gather(*pending)
        except (TimeoutError, KafkaError) as exc:
            raise KafkaUnavailable(str(exc) or type(exc).__name__) from exc

    async def ping(self) -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=self._settings.kafka_bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        except KafkaError:
            return False
        finally:
            await admin.close()
