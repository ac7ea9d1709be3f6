"""Session fixtures shared by every test folder: real Kafka and ClickHouse (see tests.support.services)."""

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pravis_gateway.keys import KeyStore

from tests.support import services

ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture(scope="session")
def log_dir() -> Path:
    path = ARTIFACTS / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def kafka_bootstrap(log_dir: Path) -> Iterator[str]:
    with services.kafka_bootstrap(log_dir) as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[str]:
    with services.clickhouse_server_url(tmp_path_factory.mktemp("chdb"), log_dir) as url:
        yield url


@pytest.fixture(scope="session")
def clickhouse_url(clickhouse_server: str) -> str:
    """A database of this test session's own, so runs against a shared server never see each other's rows."""
    return f"{clickhouse_server}/pravis_test_{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pravis-data")


@pytest.fixture(scope="session")
def api_key(data_dir: Path) -> str:
    key, _ = KeyStore(data_dir / "keys.json").create("test-project", "write")
    return key


@pytest.fixture(scope="session")
def worker_env(kafka_bootstrap: str, clickhouse_url: str, data_dir: Path) -> dict[str, str]:
    return {
        "PRAVIS_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "PRAVIS_CLICKHOUSE_URL": clickhouse_url,
        "PRAVIS_DATA_DIR": str(data_dir),
        "PRAVIS_LOADER_GROUP_ID": f"pravis-loader-test-{secrets.token_hex(4)}",
        "PRAVIS_LOADER_HEALTH_PORT": str(services.free_port()),
    }


@pytest.fixture(scope="session")
def gateway_url(worker_env: dict[str, str], log_dir: Path, api_key: str) -> Iterator[str]:
    port = services.free_port()
    gateway = services.Process(
        "gateway", [sys.executable, "-m", "pravis_gateway", "--port", str(port)], log_dir, worker_env
    ).start()
    try:
        services.wait_for_http(f"http://127.0.0.1:{port}/readyz", gateway.popen)
        yield f"http://127.0.0.1:{port}"
    finally:
        gateway.stop()


@pytest.fixture(scope="session")
def loader(worker_env: dict[str, str], log_dir: Path) -> Iterator[services.Process]:
    process = services.Process("loader", [sys.executable, "-m", "pravis_rollups.loader"], log_dir, worker_env)
    process.start()
    try:
        services.wait_for_http(
            f"http://127.0.0.1:{worker_env['PRAVIS_LOADER_HEALTH_PORT']}/healthz", process.popen
        )
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def privacy_worker(
    worker_env: dict[str, str], log_dir: Path, loader: services.Process
) -> Iterator[services.Process]:
    """The deletion worker; after the loader, whose migrations create the audit table."""
    port = services.free_port()
    env = {**worker_env, "PRAVIS_PRIVACY_HEALTH_PORT": str(port), "PRAVIS_PRIVACY_GROUP_ID": "privacy-test"}
    process = services.Process(
        "privacy", [sys.executable, "-m", "pravis_rollups.privacy"], log_dir, env
    ).start()
    try:
        services.wait_for_http(f"http://127.0.0.1:{port}/healthz", process.popen)
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def secret_key(data_dir: Path) -> str:
    key, _ = KeyStore(data_dir / "keys.json").create("test-project", "secret")
    return key


def pytest_report_header() -> list[str]:
    reason = services.docker_unavailable_reason()
    fallback = "Docker containers" if reason is None else f"embedded (Tansu / chdb; {reason})"
    return [
        f"kafka: {os.environ.get('PRAVIS_KAFKA_BOOTSTRAP', fallback)}",
        f"clickhouse: {os.environ.get('PRAVIS_CLICKHOUSE_URL', fallback)}",
    ]
