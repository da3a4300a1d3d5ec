"""Workflows and steps used by the SDK core tests (run by in-process and subprocess workers)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

import tether


class Order(BaseModel):
    id: str
    amount: float
    items: list[str] = []


class Outcome(BaseModel):
    id: str
    total: float
    tags: list[str]


@tether.step
def double(x: int) -> int:
    return x * 2


@tether.step
async def add(a: int, b: int = 1) -> int:
    return a + b


@tether.step(attempts=1)
def price(order: Order) -> float:
    return round(order.amount * 1.19, 2)


@tether.workflow
async def order_total(order: Order) -> Outcome:
    total = await price(order)
    tags = ["big"] if total > 100 else []
    return Outcome(id=order.id, total=total, tags=tags)


@tether.workflow
async def fan_out(n: int) -> list[int]:
    return await tether.gather(*(double(i) for i in range(n)))


@tether.workflow
async def parent(n: int) -> int:
    children = await tether.gather(fan_out(n), fan_out(n + 1))
    return sum(children[0]) + sum(children[1])


@tether.workflow
async def sleepy(seconds: float) -> float:
    start = tether.now()
    await tether.sleep(seconds)
    return (tether.now() - start).total_seconds()


@tether.workflow
async def patched_flow(x: int) -> int:
    if tether.patched("add-ten"):
        return await add(x, 10)
    return await add(x, 1)


class Flaky(Exception):
    pass


@tether.step(attempts=tether.RetryPolicy(max_attempts=5, initial_interval="100ms"))
def flaky(marker: str) -> str:
    """Fails on the first two attempts, counted in a marker file."""
    path = Path(marker)
    count = int(path.read_text()) if path.exists() else 0
    path.write_text(str(count + 1))
    if count < 2:
        raise Flaky(f"transient failure {count + 1}")
    return f"ok after {count + 1}"


@tether.workflow
async def retrying(marker: str) -> str:
    return await flaky(marker)


@tether.step(attempts=5, non_retryable=[ValueError])
def strict(value: str) -> str:
    raise ValueError(f"value {value!r} is not acceptable")


@tether.workflow
async def strict_flow(value: str) -> str:
    return await strict(value)


@tether.step(attempts=tether.RetryPolicy(max_attempts=30, initial_interval="100ms",
                                        max_interval="200ms"))
def record(journal: str, i: int) -> int:
    """Appends 'step i' to a journal; fails until a gate file exists after step 4."""
    if i == 5 and not Path(journal + ".gate").exists():
        raise RuntimeError("gate closed")
    with open(journal, "a") as f:
        f.write(f"step {i} pid {os.getpid()}\n")
    return i


@tether.workflow
async def ten_steps(journal: str) -> int:
    total = 0
    for i in range(1, 11):
        total += await record(journal, i)
    return total


@tether.workflow
async def counter(n: int) -> int:
    if n >= 3:
        return n
    tether.continue_as_new(n + 1)


@tether.workflow
async def reads_file(path: str) -> str:
    """Breaks the determinism rule on purpose: I/O in workflow code."""
    with open(path) as f:
        return f.read()


# ---- plain temporalio beside tether (the escape hatch) ----------------------------------

from datetime import timedelta  # noqa: E402

from temporalio import activity as t_activity  # noqa: E402
from temporalio import workflow as t_workflow  # noqa: E402


@t_activity.defn(name="raw_shout")
async def raw_shout(text: str) -> str:
    return text.upper()


@t_workflow.defn(name="raw_greeting")
class RawGreeting:
    @t_workflow.run
    async def run(self, name: str) -> str:
        return await t_workflow.execute_activity(raw_shout, f"hello {name}",
                                                 start_to_close_timeout=timedelta(seconds=10))


@tether.workflow
async def mixed(name: str) -> str:
    """A tether workflow that uses raw Temporal APIs and a tether step side by side."""
    shouted = await t_workflow.execute_activity(raw_shout, name, start_to_close_timeout=timedelta(seconds=10))
    return f"{shouted}:{await add(1, 1)}"


@tether.workflow
async def waits(seconds: float) -> bool:
    return await tether.wait_for(lambda: False, timeout=seconds)
