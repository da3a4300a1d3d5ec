"""Budget checks' overhead: workflows of sequential model calls (a scripted model) with a budget
on every run vs none, same dev server, alternating rounds. Target: with / without <= 1.05.

    .venv/bin/python -m benchmarks.budget_overhead [--workflows 40] [--calls 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import uuid
from typing import Any

import tether
from benchmarks import budget_workloads as w
from benchmarks.harness import _timed, alternate
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer


async def _round(address: str, wf: Any, n: int, k: int) -> float:
    conn = Connection(address=address, task_queue=f"bench-{uuid.uuid4().hex[:8]}", telemetry=False)
    client = tether.Client(await conn.connect(), conn)
    async with tether.Worker(client, workflows=[w.calls_budgeted, w.calls_unbudgeted]):
        return await _timed(lambda: asyncio.gather(*(client.run(wf, k) for _ in range(n))))


async def main(n: int, k: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as server:
        t_on, t_off = await alternate(rounds, lambda: _round(server.address, w.calls_budgeted, n, k),
                                      lambda: _round(server.address, w.calls_unbudgeted, n, k))
    calls = n * k
    print(f"workload: {n} workflows x {k} model calls (scripted model), median of {rounds} alternating rounds")
    print(f"no budget:   {t_off:.2f}s  ({calls / t_off:.0f} calls/s)")
    print(f"with budget: {t_on:.2f}s  ({calls / t_on:.0f} calls/s)")
    print(f"ratio with/without: {t_on / t_off:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workflows", type=int, default=40)
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.workflows, a.calls, a.rounds))
