"""Steps that hold, crash their worker and charge a deduplicating service: the liveness tests' app.

Every step appends a line `<event> <attempt> <pid> <key>` to a journal file, so a test can see
which worker ran which attempt and with which idempotency key.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

from temporalio import activity

import tether


def _write(journal: str, event: str) -> None:
    attempt = activity.info().attempt if activity.in_activity() else 0
    with open(journal, "a") as f:
        f.write(f"{event} {attempt} {os.getpid()} {tether.idempotency_key()}\n")


def _gate_open(journal: str) -> bool:
    return Path(journal + ".gate").exists()


@tether.step
def hold(journal: str) -> str:
    """Starts, then waits for `<journal>.gate` (default step options: no heartbeat= set)."""
    _write(journal, "start")
    while not _gate_open(journal):
        time.sleep(0.05)
    _write(journal, "done")
    return "held"


@tether.step
async def hold_async(journal: str) -> str:
    """`hold` as an async step."""
    _write(journal, "start")
    while not _gate_open(journal):
        await asyncio.sleep(0.05)
    _write(journal, "done")
    return "held"


@tether.step
def finish_slowly(journal: str, seconds: float) -> str:
    """An effect that takes `seconds` and then reports (a payment call in flight at SIGTERM)."""
    _write(journal, "start")
    time.sleep(seconds)
    _write(journal, "done")
    return "finished"


@tether.step
def after(journal: str) -> str:
    _write(journal, "after")
    return "after"


@tether.step(attempts=10)
def crash(journal: str) -> str:
    """A poison step: it kills the worker that runs it, every time (and may retry 10 times).

    It works a moment first (as a model loads before it segfaults), so its first heartbeat
    reaches the engine."""
    _write(journal, "crash")
    time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"


@tether.step(runs_on="annex")
def in_annex(journal: str) -> str:
    _write(journal, "annex")
    return "annex"


@tether.step(attempts=tether.RetryPolicy(max_attempts=3, initial_interval="100ms"))
def keyed(journal: str, call: int) -> str:
    """Records its key on every attempt; the first attempt of each call fails."""
    _write(journal, f"key{call}")
    if activity.info().attempt == 1:
        raise RuntimeError("transient failure")
    return tether.idempotency_key()


@tether.workflow
async def held(journal: str) -> str:
    return await hold(journal)


@tether.workflow
async def held_async(journal: str) -> str:
    return await hold_async(journal)


@tether.workflow
async def slow_then_after(journal: str) -> str:
    first = await finish_slowly(journal, 2.0)
    return f"{first}+{await after(journal)}"


@tether.workflow
async def long_step(journal: str) -> str:
    return await finish_slowly(journal, 60.0)


@tether.workflow
async def poisoned(journal: str) -> str:
    return await crash(journal)


@tether.workflow
async def annexed(journal: str) -> str:
    return await in_annex(journal)


@tether.workflow
async def keyed_twice(journal: str) -> list[str]:
    return [await keyed(journal, 1), await keyed(journal, 2)]
