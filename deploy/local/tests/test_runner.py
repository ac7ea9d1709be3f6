"""The process runner: health-gated start, prefixed logs, restart of a crashed service, clean stop."""

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
from pravis_local.runner import Runner, Service

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


async def wait_for(predicate, timeout_s: float = 20.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.05)


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
        await wait_for(lambda: second.read_text() not in ("", str(original)))

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
