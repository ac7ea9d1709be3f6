"""`python -m pravis_local.pdeathsig PARENT_PID PROGRAM [ARG...]`: run PROGRAM so that it is killed the moment
its supervisor dies, however the supervisor dies (SIGKILL included).

Linux's PR_SET_PDEATHSIG is set here, in a short-lived process that then execs PROGRAM (the setting survives
execve), rather than in a `preexec_fn` of the supervisor: `preexec_fn` runs Python between fork and exec in a
process that has threads (asyncio's child watchers, the resolver's executor), which Python documents as
unsafe, and it cannot be used at all from Python 3.12 subinterpreters. The price is one extra interpreter
start per service (~20 ms; this module imports only the standard library).

The signal fires when the *thread* that forked the child exits, not the process. The runner forks from its
event loop's thread (asyncio calls `Popen` there), which in `pravis up` is the main thread, alive exactly as
long as the supervisor. Run a `Runner` only in a thread that lives as long as its services should.

Only the direct child is covered: a service that forks workers of its own (the gateway with
`PRAVIS_GATEWAY_WORKERS` > 1) must stop them itself; `pravis up` cleans up any such leftover on its next start
(`pravis_local.orphans`)."""

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
EXIT_PARENT_GONE = 70


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_PDEATHSIG): {os.strerror(errno)}")


def guarded(argv: list[str] | tuple[str, ...], parent_pid: int | None = None) -> list[str]:
    """`argv` wrapped so that its process is SIGKILLed when `parent_pid` (default: this process) dies."""
    return [sys.executable, "-m", "pravis_local.pdeathsig", str(parent_pid or os.getpid()), *argv]


def main(args: list[str]) -> None:
    parent_pid, program = int(args[0]), args[1:]
    # SIGKILL rather than SIGTERM: every service is built to survive kill -9 without losing an acked event,
    # and a service that hangs in its TERM handler would otherwise keep its port.
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:
        # The supervisor died before prctl took effect; the signal will never come, so do not start.
        sys.exit(EXIT_PARENT_GONE)
    os.execvp(program[0], program)


if __name__ == "__main__":
    main(sys.argv[1:])
