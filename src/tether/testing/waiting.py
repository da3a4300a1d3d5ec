"""Waiting in tests on a condition, never on a fixed sleep.

Runs in test processes.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable


async def eventually(check: Callable[[], object | Awaitable[object]], *, timeout: float = 30.0,
                     every: float = 0.1) -> None:
    """Retry `check` until it passes: it returns without an `AssertionError` and not `False`.

    `check` may be sync or async. After `timeout` seconds the last `AssertionError` is raised
    (or one saying the condition stayed false), so the test fails with the real reason.

    Example:
        >>> await eventually(lambda: journal.exists())
        >>> async def retried():
        ...     assert (await run.describe()).steps[0].attempts >= 2
        >>> await eventually(retried, timeout=20)
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result is not False:
                return
            failure: AssertionError = AssertionError(f"still false after {timeout:g}s: {_name(check)}")
        except AssertionError as exc:
            failure = exc
        if time.monotonic() >= deadline:
            raise failure
        await asyncio.sleep(every)


def _name(check: Callable[..., object]) -> str:
    return getattr(check, "__qualname__", repr(check))
