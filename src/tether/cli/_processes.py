"""`tether worker --processes N`: N worker processes of the same command, supervised by this one.

Runs in the CLI's process. Python runs one worker's code on one core at a time (workflow tasks
and the steps' event loop share it), so N processes let one machine's cores serve one queue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

from tether import settings
from tether.engine.devserver import death_signal


def without_processes(argv: Sequence[str]) -> list[str]:
    """The command line `argv` without its `--processes N` (or `--processes=N`)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--processes":
            skip = True
        elif not arg.startswith("--processes="):
            out.append(arg)
    return out


def run_processes(argv: Sequence[str], count: int) -> int:
    """Run `tether ARGV` (a worker command) in `count` processes until they end; returns the exit code.

    SIGTERM and SIGINT (Ctrl-C) are forwarded to every process once per signal, so each stops
    gracefully within its own `--grace`, and a second Ctrl-C stops them at once, as for one
    worker. The processes are in sessions of their own (Ctrl-C reaches them only through this
    one, once) and die with it. When one ends by itself, the others are stopped too.
    """
    cmd = [sys.executable, "-m", "tether", *without_processes(argv)]
    children = [subprocess.Popen(cmd, env=settings.child_env(), start_new_session=True,
                                 preexec_fn=death_signal())
                for _ in range(count)]
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _wait_for_one(children)
        if not stopping:  # one ended on its own (a crash, a fatal error): stop its siblings
            forward(signal.SIGTERM, None)
        codes = [child.wait() for child in children]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return next((c for c in codes if c != 0), 0)


def _wait_for_one(children: list[subprocess.Popen[bytes]]) -> None:
    pids = {child.pid: child for child in children}
    while True:
        pid, status = os.wait()  # a signal's handler runs, then the wait resumes
        child = pids.get(pid)
        if child is not None:
            child.returncode = os.waitstatus_to_exitcode(status)
            return
