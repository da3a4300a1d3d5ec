"""Steps that fail until a given attempt, reporting `tether.attempt()` (used by tests/engine/test_attempt.py)."""

from __future__ import annotations

import tether

QUICK = tether.RetryPolicy(max_attempts=4, initial_interval="50ms", max_interval="100ms")


@tether.step(attempts=QUICK)
async def flaky_async(succeed_on: int) -> int:
    if tether.attempt() < succeed_on:
        raise RuntimeError(f"attempt {tether.attempt()} fails on purpose")
    return tether.attempt()


@tether.step(attempts=QUICK)
def flaky_sync(succeed_on: int) -> int:
    if tether.attempt() < succeed_on:
        raise RuntimeError(f"attempt {tether.attempt()} fails on purpose")
    return tether.attempt()


@tether.workflow
async def attempts_seen(succeed_on: int) -> list[int]:
    return [tether.attempt(), await flaky_async(succeed_on), await flaky_sync(succeed_on)]
