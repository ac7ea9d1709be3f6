"""The embedded stack: which services `pravis up` starts, in which order, wired to each other by env."""

import os
import secrets
import socket
from pathlib import Path

from pravis_gateway.keys import KeyStore
from rich.panel import Panel

from pravis_local.broker import broker_command, default_partitions, ensure_topics
from pravis_local.orphans import (
    SUPERVISOR_ENV,
    StackLock,
    StackRunning,
    leftovers,
    port_holders,
    stop_leftovers,
)
from pravis_local.runner import Runner, Service, console, http_ok, python_module
from pravis_local.settings import Settings

DEFAULT_PROJECT = "default"


def dev_api_key(settings: Settings) -> str:
    """PRAVIS_DEV_API_KEY if set, else a key generated on the first start and kept in the data dir."""
    if settings.dev_api_key:
        key = settings.dev_api_key
    else:
        remembered = settings.data_dir / "dev_api_key"
        if not remembered.exists():
            remembered.parent.mkdir(parents=True, exist_ok=True)
            remembered.write_text("pvw_" + secrets.token_urlsafe(24))
            remembered.chmod(0o600)
        key = remembered.read_text().strip()
    KeyStore(settings.data_dir / "keys.json").create(DEFAULT_PROJECT, "write", key=key)
    return key


def services(settings: Settings) -> list[Service]:
    host = settings.host
    bootstrap = f"{host}:{settings.broker_port}"
    shared_env = {
        "PRAVIS_KAFKA_BOOTSTRAP": bootstrap,
        # With PRAVIS_WAREHOUSE_PASSWORD set the URL carries the credentials to every worker.
        "PRAVIS_CLICKHOUSE_URL": settings.warehouse_url(),
        "PRAVIS_DATA_DIR": str(Path(settings.data_dir).resolve()),
        # Marks the services (and whatever they fork) as this stack's, for the next start's clean-up.
        SUPERVISOR_ENV: str(os.getpid()),
    }

    # Passed on explicitly: the settings may come from arguments rather than the environment children inherit.
    warehouse_env = dict(shared_env)
    if settings.warehouse_password is not None:
        warehouse_env["PRAVIS_WAREHOUSE_USER"] = settings.warehouse_user
        warehouse_env["PRAVIS_WAREHOUSE_PASSWORD"] = settings.warehouse_password.get_secret_value()

    async def broker_ready() -> bool:
        # Topics are (re)created on every health pass: an in-memory broker that restarted has none.
        try:
            await ensure_topics(bootstrap, default_partitions(settings.events_partitions), timeout_s=0.5)
            return True
        except Exception:
            return False

    # The loader applies the warehouse migrations, so what reads warehouse tables starts after it.
    return [
        Service(
            "broker",
            broker_command(host, settings.broker_port, settings.broker_storage),
            broker_ready,
            shared_env,
            after=(),
        ),
        Service(
            "warehouse",
            python_module("pravis_local.warehouse", "--host", host, "--port", str(settings.warehouse_port)),
            http_ok(f"http://{host}:{settings.warehouse_port}/ping"),
            warehouse_env,
            after=(),
        ),
        Service(
            "loader",
            python_module("pravis_rollups.loader"),
            http_ok(f"http://{host}:{settings.loader_health_port}/healthz"),
            {**shared_env, "PRAVIS_LOADER_HEALTH_PORT": str(settings.loader_health_port)},
            after=("broker", "warehouse"),
        ),
        Service(
            "scheduler",
            python_module("pravis_rollups.scheduler"),
            http_ok(f"http://{host}:{settings.scheduler_health_port}/healthz"),
            {**shared_env, "PRAVIS_SCHEDULER_HEALTH_PORT": str(settings.scheduler_health_port)},
            after=("loader",),
        ),
        Service(
            "privacy",
            python_module("pravis_rollups.privacy"),
            http_ok(f"http://{host}:{settings.privacy_health_port}/healthz"),
            {**shared_env, "PRAVIS_PRIVACY_HEALTH_PORT": str(settings.privacy_health_port)},
            after=("loader",),
        ),
        Service(
            "stream",
            python_module("pravis_stream", "--host", host, "--port", str(settings.stream_web_port)),
            http_ok(f"http://{host}:{settings.stream_web_port}/healthz"),
            shared_env,
            after=("broker",),
            # An in-memory broker takes the worker's changelogs and internal topics with it; a worker that
            # outlived them wrote into the restarted broker's topics and its successor then hung in recovery.
            restart_with=("broker",) if settings.broker_storage.startswith("memory") else (),
        ),
        Service(
            "gateway",
            python_module("pravis_gateway", "--host", host, "--port", str(settings.gateway_port)),
            http_ok(f"http://{host}:{settings.gateway_port}/readyz"),
            shared_env,
            after=("broker", "loader"),
        ),
        Service(
            "dashboards",
            python_module("pravis_dashboards", "--host", host, "--port", str(settings.dashboards_port)),
            http_ok(f"http://{host}:{settings.dashboards_port}/healthz"),
            {**shared_env, "PRAVIS_STREAM_URL": f"http://{host}:{settings.stream_web_port}"},
            after=("loader",),
        ),
        Service(
            "monitor",
            python_module("pravis_local.monitor", "--host", host, "--port", str(settings.monitor_port)),
            http_ok(f"http://{host}:{settings.monitor_port}/healthz"),
            shared_env,
            after=("broker",),
        ),
    ]


def stack_ports(settings: Settings) -> dict[str, int]:
    return {
        "broker": settings.broker_port,
        "warehouse": settings.warehouse_port,
        "gateway": settings.gateway_port,
        "loader": settings.loader_health_port,
        "scheduler": settings.scheduler_health_port,
        "privacy": settings.privacy_health_port,
        "stream": settings.stream_web_port,
        "dashboards": settings.dashboards_port,
        "monitor": settings.monitor_port,
    }


def ports_in_use(settings: Settings) -> dict[str, int]:
    """Ports the stack needs that something already listens on (another `pravis up`, say), which would
    otherwise pass the health checks of services that never started."""
    busy = {}
    for name, port in stack_ports(settings).items():
        with socket.socket() as probe:
            if probe.connect_ex((settings.host, port)) == 0:
                busy[name] = port
    return busy


def clear_the_way(settings: Settings) -> StackLock:
    """Take the data dir's supervisor lock, stop what a dead supervisor of it left running, and refuse to
    start over anyone else's ports, naming the process that holds each."""
    try:
        lock = StackLock(settings.data_dir).acquire()
    except StackRunning as exc:
        raise SystemExit(f"{exc}. Stop it first (Ctrl-C in its terminal).") from None
    if stale := leftovers(settings.data_dir):
        for holder in stop_leftovers(stale):
            console.print(
                f"[yellow]stopped {holder}, left running by a `pravis up` that did not stop cleanly[/]"
            )
    if busy := ports_in_use(settings):
        lock.release()
        holders = port_holders(busy)
        described = [
            f"{name} port {port} held by {', '.join(map(str, holders.get(name, []))) or 'an unknown process'}"
            for name, port in busy.items()
        ]
        raise SystemExit(
            f"already in use: {'; '.join(described)}. "
            "Stop that process or move the stack's ports (PRAVIS_*_PORT)."
        )
    return lock


async def up(settings: Settings) -> None:
    lock = clear_the_way(settings)
    key = dev_api_key(settings)
    runner = Runner(services(settings))
    gateway = f"http://{settings.host}:{settings.gateway_port}"

    def announce() -> None:
        console.print(
            Panel.fit(
                f"gateway   {gateway}\n"
                f"warehouse http://{settings.host}:{settings.warehouse_port}  (ClickHouse HTTP, db "
                f"{settings.warehouse_database}, "
                f"{'password required' if settings.warehouse_password else 'no password: loopback only'})\n"
                f"broker    {settings.host}:{settings.broker_port}\n"
                f"live API  http://{settings.host}:{settings.stream_web_port}/live/{DEFAULT_PROJECT}/summary"
                "   (alerts: uv run pravis alerts --follow)\n"
                f"dashboards http://{settings.host}:{settings.dashboards_port}/executive\n"
                f"monitor   http://{settings.host}:{settings.monitor_port}/metrics"
                "   (lag, memory; uv run pravis status)\n"
                f"dev key   {key}   (project {DEFAULT_PROJECT})\n\n"
                f"send events: POST {gateway}/api/v1/analytics/events with header X-API-Key (README: "
                '"Send events, query them")\n'
                'query: uv run pravis sql "SELECT event_type, count() FROM events FINAL GROUP BY event_type"',
                title="Pravis is up (Ctrl-C stops everything)",
            )
        )

    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        await runner.run_until_signalled(announce)
    finally:
        lock.release()
