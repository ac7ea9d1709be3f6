"""Every worker reads the same PRAVIS_KAFKA_* security settings and hands them to its Kafka clients; `pravis
topics create` makes the topics on any broker."""

import asyncio

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from pravis_gateway.settings import Settings as GatewaySettings
from pravis_rollups import kafka as rollups_kafka
from pravis_rollups.settings import Settings as RollupSettings
from pravis_schemas.kafka_security import kafka_client_options
from pravis_stream.kafka import faust_credentials
from pravis_stream.settings import Settings as StreamSettings

EVENT_HUBS = {
    "PRAVIS_KAFKA_BOOTSTRAP": "pravis.servicebus.windows.net:9093",
    "PRAVIS_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "PRAVIS_KAFKA_SASL_MECHANISM": "PLAIN",
    "PRAVIS_KAFKA_SASL_USERNAME": "$ConnectionString",
    "PRAVIS_KAFKA_SASL_PASSWORD": "Endpoint=sb://pravis.servicebus.windows.net/;SharedAccessKey=s3cr3t=",
}


@pytest.fixture
def event_hubs_env(monkeypatch):
    for name, value in EVENT_HUBS.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("settings_class", [GatewaySettings, RollupSettings, StreamSettings])
def test_every_worker_reads_the_security_settings(event_hubs_env, settings_class):
    settings = settings_class()
    options = kafka_client_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_plain_password"] == EVENT_HUBS["PRAVIS_KAFKA_SASL_PASSWORD"]
    assert "s3cr3t" not in repr(settings)


async def test_rollup_consumers_carry_the_options(event_hubs_env):
    settings = RollupSettings()
    for consumer in (
        rollups_kafka.loader_consumer(settings, "events"),
        rollups_kafka.privacy_consumer(settings, "x"),
    ):
        assert consumer._client._security_protocol == "SASL_SSL"
        assert consumer._client._sasl_plain_username == "$ConnectionString"


def test_stream_faust_credentials(event_hubs_env, monkeypatch):
    credentials = faust_credentials(StreamSettings())
    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "PLAIN"
    monkeypatch.setenv("PRAVIS_KAFKA_SECURITY_PROTOCOL", "SSL")
    assert isinstance(faust_credentials(StreamSettings()), SSLCredentials)
    monkeypatch.setenv("PRAVIS_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    assert faust_credentials(StreamSettings()) is None


def test_topics_create_on_a_fresh_broker(log_dir):
    from aiokafka.admin import AIOKafkaAdminClient
    from pravis_local.broker import broker_command
    from pravis_local.cli import app
    from pravis_schemas import topics
    from typer.testing import CliRunner

    from tests.support import services

    port = services.free_port()
    broker = services.Process("topics-broker", broker_command("127.0.0.1", port), log_dir).start()

    async def partitions() -> dict[str, int]:
        admin = AIOKafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}")
        await admin.start()
        try:
            return {
                d["topic"]: len(d["partitions"]) for d in await admin.describe_topics(list(topics.ALL_TOPICS))
            }
        finally:
            await admin.close()

    try:
        args = ["topics", "create", "--bootstrap", f"127.0.0.1:{port}", "--events-partitions", "4"]
        first = CliRunner().invoke(app, args)
        assert first.exit_code == 0, first.output
        assert first.output.count("created") == len(topics.ALL_TOPICS)
        assert asyncio.run(partitions()) == {t: 4 if t == topics.EVENTS else 1 for t in topics.ALL_TOPICS}
        again = CliRunner().invoke(app, args)
        assert again.exit_code == 0 and again.output.count("exists") == len(topics.ALL_TOPICS)
    finally:
        broker.stop()
