"""Every worker started alone, with no settings, finds the embedded stack where `pravis up` puts it, at the
defaults docs/production.md documents."""

import os
import re
from pathlib import Path

import pytest
from pravis_dashboards.settings import Settings as DashboardsSettings
from pravis_gateway.settings import Settings as GatewaySettings
from pravis_local.settings import Settings as StackSettings
from pravis_local.topics_cli import KafkaCliSettings
from pravis_rollups.settings import Settings as RollupSettings
from pravis_stream.settings import Settings as StreamSettings

PRODUCTION_DOC = Path(__file__).parents[1] / "docs" / "production.md"


def documented_default(variable: str) -> str:
    match = re.search(rf"^\| `{variable}` \| `([^`]+)` \|", PRODUCTION_DOC.read_text(), re.MULTILINE)
    assert match, f"{variable} is not in the table of {PRODUCTION_DOC.name}"
    return match[1]


@pytest.fixture(autouse=True)
def defaults_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PRAVIS_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    "settings_class", [GatewaySettings, RollupSettings, StreamSettings, KafkaCliSettings]
)
def test_kafka_clients_default_to_the_stacks_broker(settings_class):
    stack = StackSettings()
    bootstrap = settings_class().kafka_bootstrap
    assert bootstrap == f"{stack.host}:{stack.broker_port}"
    assert bootstrap == documented_default("PRAVIS_KAFKA_BOOTSTRAP")


@pytest.mark.parametrize("settings_class", [GatewaySettings, RollupSettings, DashboardsSettings])
def test_clickhouse_clients_default_to_the_stacks_warehouse(settings_class):
    url = settings_class().clickhouse_url
    assert url == StackSettings().warehouse_url()
    assert url == documented_default("PRAVIS_CLICKHOUSE_URL")


def test_each_worker_listens_where_the_stack_expects_it():
    stack = StackSettings()
    gateway, rollups, stream, dashboards = (
        GatewaySettings(),
        RollupSettings(),
        StreamSettings(),
        DashboardsSettings(),
    )
    assert (gateway.host, gateway.gateway_port) == (stack.host, stack.gateway_port)
    assert (stream.stream_web_host, stream.stream_web_port) == (stack.host, stack.stream_web_port)
    assert (dashboards.dashboards_host, dashboards.dashboards_port) == (stack.host, stack.dashboards_port)
    assert dashboards.stream_url == f"http://{stack.host}:{stack.stream_web_port}"
    assert (rollups.loader_health_host, rollups.loader_health_port) == (stack.host, stack.loader_health_port)
    assert (rollups.scheduler_health_host, rollups.scheduler_health_port) == (
        stack.host,
        stack.scheduler_health_port,
    )
    assert (rollups.privacy_health_host, rollups.privacy_health_port) == (
        stack.host,
        stack.privacy_health_port,
    )


def test_the_stack_and_pravis_topics_create_agree_on_events_partitions():
    assert KafkaCliSettings().events_partitions == StackSettings().events_partitions
