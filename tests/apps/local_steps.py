"""Workflows with `@tether.step(local=True)` steps (used by tests/engine/test_local_steps.py).

The steps count their attempts in `calls`, a global of this module as the worker imports it
(steps run outside the workflow sandbox, so the test process sees the counts).
"""

from __future__ import annotations

from collections import Counter

import tether

calls: Counter[str] = Counter()

QUICK = tether.RetryPolicy(max_attempts=3, initial_interval="50ms", max_interval="100ms")


@tether.step(local=True)
def add_vat(amount: float) -> float:
    calls["add_vat"] += 1
    return round(amount * 1.2, 2)


@tether.step(local=True, attempts=QUICK)
def flaky_rule(key: str) -> int:
    calls[key] += 1
    if tether.attempt() < 3:
        raise RuntimeError(f"attempt {tether.attempt()} fails on purpose")
    return tether.attempt()


@tether.step(local=True, attempts=tether.RetryPolicy(max_attempts=2, initial_interval="50ms"))
async def always_fails(key: str) -> int:
    calls[key] += 1
    raise ValueError("never valid")


@tether.workflow
async def priced(amount: float) -> float:
    """A local step, then a durable timer: a worker that picks the run up afterwards replays it."""
    total = await add_vat(amount)
    await tether.sleep("2s")
    return total


@tether.workflow
async def retried(key: str) -> int:
    return await flaky_rule(key)


@tether.workflow
async def exhausted(key: str) -> str:
    try:
        await always_fails(key)
    except tether.StepFailed as failed:
        return failed.reason
    return "no failure"
