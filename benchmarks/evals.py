"""Evaluation overhead: `tether.evals.evaluate` over N cases (runs started with per-run model
overrides, awaited, read back with their history, scored, results appended to the resumable file)
vs the same cases started as plain runs and awaited, same concurrency, same worker, alternating
rounds in one run. Target: eval / plain <= 1.10 (cases/s).

    .venv/bin/python -m benchmarks.evals [--cases 40] [--concurrency 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import tether
from benchmarks.eval_workloads import bench_eval_read, reader
from benchmarks.harness import alternate
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.evals import Case, Fields, Schema, evaluate


def cases(n: int) -> list[Case]:
    """n labelled cases, half in EUR, half in USD."""
    return [Case(id=f"c{i}", input={"text": f"Invoice {i}: total {i + 10} {'EUR' if i % 2 else 'USD'}"},
                 expected={"amount": i + 10, "currency": "EUR" if i % 2 else "USD"}) for i in range(n)]


async def plain_round(client: tether.Client, n: int, concurrency: int) -> float:
    """Seconds to start and await the n cases as ordinary runs, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(case: Case) -> None:
        async with gate:
            await client.run(bench_eval_read, case.input)

    start = time.perf_counter()
    await asyncio.gather(*(one(c) for c in cases(n)))
    return time.perf_counter() - start


async def eval_round(client: tether.Client, n: int, concurrency: int, tmp: Path) -> float:
    """Seconds for `evaluate` over the same n cases (a fresh evaluation each round)."""
    name = f"bench-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    report = await evaluate(client, bench_eval_read, cases(n), name=name, scorers=[Fields(), Schema()],
                            configs=[{"extract": reader.model}], results=tmp / f"{name}.jsonl",
                            concurrency=concurrency)
    seconds = time.perf_counter() - start
    assert report.configs[0].score == 1.0 and len(report.cases) == n, report.configs
    return seconds


async def main(n: int, concurrency: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as server:
        conn = Connection(address=server.address, task_queue=f"bench-{uuid.uuid4().hex[:8]}")
        client = tether.Client(await conn.connect(), conn)
        async with tether.Worker(client, workflows=[bench_eval_read]):  # its steps and the model step
            t_eval, t_plain = await alternate(rounds, lambda: eval_round(client, n, concurrency, Path(tmp)),
                                              lambda: plain_round(client, n, concurrency))
    print(f"workload: {n} cases (a rule step and a scripted model step each), concurrency {concurrency}, "
          f"median of {rounds} alternating rounds")
    print(f"plain runs: {t_plain:.2f}s  ({n / t_plain:.1f} cases/s)")
    print(f"evaluation: {t_eval:.2f}s  ({n / t_eval:.1f} cases/s)")
    print(f"ratio eval/plain: {t_eval / t_plain:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=40)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.cases, a.concurrency, a.rounds))
