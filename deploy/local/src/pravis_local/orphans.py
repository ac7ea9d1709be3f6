"""Starting `pravis up` cleanly after an unclean stop: one supervisor per data dir, our leftovers cleaned,
anyone else's ports reported.

A running supervisor holds an exclusive `flock` on `DATA_DIR/pravis-up.lock`; the kernel drops it when the
supervisor dies, however it dies, so a lock that can be taken means no supervisor of this data dir is alive.
Every service it starts carries `SUPERVISOR_ENV` (the supervisor's pid) and `PRAVIS_DATA_DIR` in its
environment, and so does anything those services fork. Once we hold the lock, a process carrying both, for our
data dir, was left by a dead supervisor of this stack: it is ours to stop. A process on one of our ports
without them belongs to someone else; it is reported with its pid and command and never touched."""

import fcntl
import os
import signal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

SUPERVISOR_ENV = "PRAVIS_UP_PID"
LOCK_NAME = "pravis-up.lock"


class StackRunning(RuntimeError):
    """Another live `pravis up` holds this data dir."""


@dataclass(frozen=True)
class Holder:
    """A process listening on a port the stack needs."""

    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})"


class StackLock:
    """The data dir's supervisor lock, held until `release()` or the death of this process."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> "StackLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opened without truncating: the holder's pid stays readable until we own the lock.
        file = self.path.open("a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "unknown"
            file.close()
            raise StackRunning(
                f"another `pravis up` (pid {holder}) is running on data dir {self.path.parent}"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(str(os.getpid()))
        file.flush()
        self._file = file
        return self

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _command(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline()) or process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "?"


def leftovers(data_dir: Path) -> list[psutil.Process]:
    """Processes started by a dead supervisor of `data_dir`; call only while holding its `StackLock`."""
    wanted = str(Path(data_dir).resolve())
    found = []
    for process in psutil.process_iter():
        if process.pid == os.getpid():
            continue
        try:
            env = process.environ()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if SUPERVISOR_ENV in env and env.get("PRAVIS_DATA_DIR") == wanted:
            found.append(process)
    return found


def stop_leftovers(processes: Iterable[psutil.Process], grace_s: float = 5.0) -> list[Holder]:
    """SIGTERM, then SIGKILL after `grace_s`, to each process; return what was stopped."""
    stopped = []
    processes = list(processes)
    for process in processes:
        stopped.append(Holder(process.pid, _command(process)))
        try:
            process.send_signal(signal.SIGTERM)
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(processes, timeout=grace_s)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=grace_s)
    return stopped


def port_holders(ports: Mapping[str, int]) -> dict[str, list[Holder]]:
    """For each named port something listens on (any address), the processes listening there."""
    by_port: dict[int, set[int]] = {}
    for connection in psutil.net_connections(kind="inet"):
        if connection.status == psutil.CONN_LISTEN and connection.laddr:
            by_port.setdefault(connection.laddr.port, set()).add(connection.pid or 0)
    held = {}
    for name, port in ports.items():
        if port in by_port:
            held[name] = [Holder(pid, _command_of(pid)) for pid in sorted(by_port[port])]
    return held


def _command_of(pid: int) -> str:
    """The command of `pid`; "?" when it is gone or not ours to see (pid 0: another user's socket)."""
    try:
        return _command(psutil.Process(pid)) if pid else "?"
    except psutil.Error:
        return "?"
