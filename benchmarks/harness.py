"""Measurement helpers for the benchmarks: run N workflows of K no-op steps, time them.

Every figure is a ratio against a baseline measured in the same run, alternating rounds so
that noise from the shared machine falls on both sides.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

from temporalio.client import Client as TemporalClient
from temporalio.worker import Worker as TemporalWorker

import tether
from benchmarks import raw_workloads, workloads
from tether.engine.connection import Connection

WORKFLOWS = 40
STEPS = 10


async def tether_round(address: str, n: int = WORKFLOWS, k: int = STEPS,
                       connection: Connection | None = None) -> float:
    """Seconds for n concurrent tether workflows of k steps each (worker started beforehand)."""
    conn = connection or Connection(address=address)
    conn = Connection(**{**conn.__dict__, "address": address, "task_queue": f"bench-{uuid.uuid4().hex[:8]}"})
    client = tether.Client(await conn.connect(), conn)
    async with tether.Worker(client, workflows=[workloads.bench_tether], steps=[workloads.bench_noop]):
        return await _timed(lambda: asyncio.gather(*(client.run(workloads.bench_tether, k) for _ in range(n))))


async def raw_round(address: str, n: int = WORKFLOWS, k: int = STEPS) -> float:
    """Seconds for the same work written directly with temporalio."""
    from temporalio.contrib.pydantic import pydantic_data_converter

    client = await TemporalClient.connect(address, data_converter=pydantic_data_converter)
    queue = f"raw-{uuid.uuid4().hex[:8]}"
    async with TemporalWorker(client, task_queue=queue, workflows=[raw_workloads.BenchRaw],
                              activities=[raw_workloads.raw_noop]):
        return await _timed(lambda: asyncio.gather(*(
            client.execute_workflow("bench_raw", k, id=f"raw-{uuid.uuid4().hex}", task_queue=queue)
            for _ in range(n))))


async def _timed(fn: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def alternate(rounds: int, a: Callable[[], Awaitable[float]],
                    b: Callable[[], Awaitable[float]]) -> tuple[float, float]:
    """Median seconds of a and b over alternating rounds (after one warm-up of each)."""
    await a()
    await b()
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(await a())
        tb.append(await b())
    return statistics.median(ta), statistics.median(tb)
