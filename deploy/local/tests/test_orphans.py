"""No orphans: services die with their supervisor however it dies, and `pravis up` after an unclean stop
starts cleanly, stopping what its own dead stack left and naming anyone else's process on its ports."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from pravis_local.broker import broker_command
from pravis_local.orphans import SUPERVISOR_ENV
from pravis_local.pdeathsig import EXIT_PARENT_GONE

from tests.support.services import free_port, interrupt, wait_for

pytestmark = pytest.mark.timeout(240)

# A supervisor as `pravis up` is one: a Runner started from the main thread's event loop. The services print
# their pid and run until killed; `stubborn` ignores SIGINT, so a graceful stop of the runner hangs on it.
SUPERVISOR = """
import asyncio, sys
from pravis_local.runner import Runner, Service

SERVICE = "import os, signal, time; {ignore}; print(os.getpid(), flush=True)\\nwhile True: time.sleep(1)"

async def healthy():
    return True

async def main():
    runner = Runner([
        Service("plain", [sys.executable, "-c", SERVICE.format(ignore="pass")], healthy),
        Service("stubborn", [sys.executable, "-c", SERVICE.format(
            ignore="signal.signal(signal.SIGINT, signal.SIG_IGN)")], healthy),
    ])
    await runner.run_until_signalled(lambda: print("ready", flush=True))

asyncio.run(main())
"""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def service_pids(supervisor: psutil.Process, count: int) -> list[int]:
    """The supervisor's children once all `count` run their real program (not the pdeathsig shim)."""
    pids: list[int] = []

    def started() -> bool:
        pids[:] = [
            child.pid
            for child in supervisor.children()
            if "pravis_local.pdeathsig" not in " ".join(child.cmdline())
        ]
        return len(pids) == count

    wait_for(started, 60, f"{count} services running")
    return pids


def printed_pids(log: Path, pids: list[int]) -> None:
    """Wait until every service printed its pid: its signal handling is set up from then on."""
    wait_for(lambda: all(f"| {pid}" in log.read_text() for pid in pids), 30, "services printed their pids")


@pytest.fixture
def runner_supervisor(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path]]:
    log = tmp_path / "supervisor.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", SUPERVISOR], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(lambda: "ready" in log.read_text(), 60, "runner ready")
        yield process, log
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def test_services_die_when_the_supervisor_is_sigkilled(runner_supervisor) -> None:
    supervisor, _ = runner_supervisor
    pids = service_pids(psutil.Process(supervisor.pid), 2)

    supervisor.kill()

    wait_for(lambda: all(gone(pid) for pid in pids), 20, "services gone after SIGKILL of the supervisor")


def test_services_die_when_the_group_gets_term_then_kill(runner_supervisor) -> None:
    """What CI runners and `timeout` do: TERM to the process group, KILL two seconds later. The runner's
    graceful stop is still waiting for `stubborn` when the KILL lands."""
    supervisor, log = runner_supervisor
    pids = service_pids(psutil.Process(supervisor.pid), 2)
    printed_pids(log, pids)

    os.killpg(supervisor.pid, signal.SIGTERM)
    time.sleep(2)
    assert not all(gone(pid) for pid in pids), "the graceful stop should still be waiting for `stubborn`"
    os.killpg(supervisor.pid, signal.SIGKILL)

    wait_for(lambda: all(gone(pid) for pid in pids), 20, "services gone after TERM then KILL")


def test_a_service_whose_supervisor_died_before_the_guard_does_not_start(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    orphaned = subprocess.run(
        [sys.executable, "-m", "pravis_local.pdeathsig", "1", "touch", str(marker)], timeout=30
    )
    assert orphaned.returncode == EXIT_PARENT_GONE
    assert not marker.exists()


# --- the real `pravis up` ---

PORT_SETTINGS = (
    "BROKER_PORT", "WAREHOUSE_PORT", "GATEWAY_PORT", "STREAM_WEB_PORT", "DASHBOARDS_PORT",
    "LOADER_HEALTH_PORT", "SCHEDULER_HEALTH_PORT", "PRIVACY_HEALTH_PORT", "MONITOR_PORT",
)  # fmt: skip


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRAVIS_")}
    env |= {f"PRAVIS_{name}": str(free_port()) for name in PORT_SETTINGS}
    env |= {
        "PRAVIS_DATA_DIR": str(tmp_path / "data"),
        "PRAVIS_EVENTS_PARTITIONS": "2",
        "PYTHONUNBUFFERED": "1",
    }
    return env


class Up:
    """A `pravis up` run in its own session, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "pravis"), "up"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**env, "COLUMNS": "200"},
                cwd=log.parent,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_up(self) -> None:
        try:
            wait_for(lambda: "Pravis is up" in self.output(), 150, "pravis up healthy")
        except TimeoutError:
            raise AssertionError(self.output()[-4000:]) from None

    def stop(self) -> None:
        interrupt(self.process, 60)


def listening(port: int) -> bool:
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in psutil.net_connections(kind="inet")
    )


def test_pravis_up_sigkilled_leaves_nothing_and_a_new_start_cleans_an_old_orphan(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    first = Up(stack_env, tmp_path / "first.log")
    try:
        first.wait_up()
        supervisor = psutil.Process(first.process.pid)
        services = service_pids(supervisor, 9)

        second = subprocess.run(
            [str(Path(sys.executable).parent / "pravis"), "up"],
            env=stack_env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert f"another `pravis up` (pid {first.process.pid})" in second.stderr + second.stdout

        first.process.kill()
        first.process.wait()
        wait_for(lambda: all(gone(pid) for pid in services), 30, "all nine services gone")
        ports = [int(stack_env[f"PRAVIS_{name}"]) for name in PORT_SETTINGS]
        wait_for(lambda: not any(listening(port) for port in ports), 30, "every port free")
    finally:
        first.stop()

    # An orphan as a supervisor without the parent-death guard (an older `pravis up`) left it: our data dir
    # and supervisor mark in its environment, holding the broker port.
    broker_port = int(stack_env["PRAVIS_BROKER_PORT"])
    orphan_env = {**stack_env, "PRAVIS_DATA_DIR": str(Path(stack_env["PRAVIS_DATA_DIR"]).resolve())}
    orphan = subprocess.Popen(
        broker_command("127.0.0.1", broker_port),
        env={**orphan_env, SUPERVISOR_ENV: "999999"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: listening(broker_port), 30, "orphan broker listening")
        again = Up(stack_env, tmp_path / "again.log")
        try:
            again.wait_up()
            assert orphan.poll() is not None
            assert f"stopped pid {orphan.pid}" in again.output()
        finally:
            again.stop()
        assert again.process.returncode is not None
    finally:
        if orphan.poll() is None:
            orphan.kill()
        orphan.wait()


def test_pravis_up_names_and_leaves_alone_a_foreign_process_on_its_port(
    stack_env: dict[str, str], tmp_path: Path
) -> None:
    gateway_port = int(stack_env["PRAVIS_GATEWAY_PORT"])
    foreign = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(gateway_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: listening(gateway_port), 30, "foreign server listening")
        refused = subprocess.run(
            [str(Path(sys.executable).parent / "pravis"), "up"],
            env={**stack_env, "COLUMNS": "300"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        message = refused.stderr + refused.stdout
        assert refused.returncode != 0
        assert f"gateway port {gateway_port} held by pid {foreign.pid}" in message, message
        assert "http.server" in message
        assert foreign.poll() is None
        assert not listening(int(stack_env["PRAVIS_BROKER_PORT"]))
    finally:
        foreign.kill()
        foreign.wait()
