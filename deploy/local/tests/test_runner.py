"""The process runner: health-gated start, prefixed logs, restart of a crashed service, clean stop."""

import os
import signal
import sys
from pathlib import Path

import pytest
from pravis_local.runner import Runner, Service

from tests.support.services import eventually

# A service that writes its pid to a file (its health signal), prints a line, and runs until signalled.
SERVICE = """
import os, sys, time, pathlib
pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))
print("hello from", os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""


def pid_file_health(path: Path):
    async def check() -> bool:
        return path.exists() and path.read_text() != ""

    return check


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.asyncio
async def test_runner_starts_in_order_restarts_a_crashed_service_and_stops_all(
    tmp_path: Path, capsys
) -> None:
    first, second = tmp_path / "first.pid", tmp_path / "second.pid"
    runner = Runner(
        [
            Service("first", [sys.executable, "-c", SERVICE, str(first)], pid_file_health(first)),
            Service("second", [sys.executable, "-c", SERVICE, str(second)], pid_file_health(second)),
        ],
        max_backoff_s=0.2,
    )
    await runner.start()
    try:
        original = int(second.read_text())
        assert first.exists()

        second.write_text("")
        os.kill(original, signal.SIGKILL)
        await eventually(lambda: second.read_text() not in ("", str(original)))

        restarted = int(second.read_text())
        assert alive(restarted)
    finally:
        await runner.stop(timeout_s=5)

    assert not alive(int(first.read_text()))
    assert not alive(restarted)
    out = capsys.readouterr().out
    assert f"second | hello from {original}" in out
    assert f"second | hello from {restarted}" in out
    assert "second exited with -9; restarting" in out


SLOW_SERVICE = """
import os, sys, time, pathlib
time.sleep(1.0)
pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))
while True:
    time.sleep(0.05)
"""


@pytest.mark.asyncio
async def test_independent_services_start_together_and_dependents_wait(tmp_path: Path, capsys) -> None:
    slow, independent, dependent = (
        tmp_path / "slow.pid",
        tmp_path / "independent.pid",
        tmp_path / "dependent.pid",
    )
    runner = Runner(
        [
            Service("slow", [sys.executable, "-c", SLOW_SERVICE, str(slow)], pid_file_health(slow), after=()),
            Service(
                "independent",
                [sys.executable, "-c", SERVICE, str(independent)],
                pid_file_health(independent),
                after=(),
            ),
            Service(
                "dependent",
                [sys.executable, "-c", SERVICE, str(dependent)],
                pid_file_health(dependent),
                after=("slow",),
            ),
        ]
    )
    await runner.start()
    await runner.stop(timeout_s=5)

    healthy_order = [line.split()[2] for line in capsys.readouterr().out.splitlines() if "healthy in" in line]
    assert healthy_order == ["independent", "slow", "dependent"]


@pytest.mark.asyncio
async def test_a_service_restarts_with_the_one_it_keeps_its_state_in(tmp_path: Path, capsys) -> None:
    """The bound service is stopped when its broker dies and started only once the broker is back; an
    unbound one keeps running."""
    broker, bound, unbound = tmp_path / "broker.pid", tmp_path / "bound.pid", tmp_path / "unbound.pid"

    def service(name: str, pid: Path, **options) -> Service:
        return Service(name, [sys.executable, "-c", SERVICE, str(pid)], pid_file_health(pid), **options)

    runner = Runner(
        [
            service("broker", broker, after=()),
            service("bound", bound, after=("broker",), restart_with=("broker",)),
            service("unbound", unbound, after=("broker",)),
        ],
        max_backoff_s=0.5,
    )
    await runner.start()
    try:
        pids = {name: int(path.read_text()) for name, path in [("broker", broker), ("bound", bound)]}
        unbound_pid = int(unbound.read_text())
        broker.write_text("")
        os.kill(pids["broker"], signal.SIGKILL)
        await eventually(lambda: bound.read_text() != str(pids["bound"]) and bound.read_text() != "")
        assert not alive(pids["bound"])
        assert alive(int(broker.read_text()))
        assert alive(unbound_pid) and int(unbound.read_text()) == unbound_pid
    finally:
        await runner.stop(timeout_s=5)

    lines = capsys.readouterr().out.splitlines()
    markers = [
        "stopping bound: it restarts with broker",
        "bound stopped",
        f"hello from {broker.read_text()}",
        "broker healthy again",
        f"hello from {bound.read_text()}",
    ]
    first_line = [next((i for i, line in enumerate(lines) if marker in line), -1) for marker in markers]
    assert -1 not in first_line and first_line == sorted(first_line), lines
    assert "bound exited" not in "\n".join(lines)  # stopped by the runner, not a crash
