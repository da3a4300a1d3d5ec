"""Human tasks: answering N open approvals through tether vs raw temporalio updates.

tether's answer path reads the task first (one describe: the record from the memo), then
sends the validated update; the workflow republishes its memo and search attribute. The
baseline is a plain temporalio workflow waiting on an update with a validator. Same dev
server, same run, alternating rounds. Target: tether / raw <= 2.0 for the answer phase.
Also reported: listing N open tasks (`client.tasks.list`, memos decoded) vs a bare
visibility query for the same runs.

    .venv/bin/python -m benchmarks.human_tasks [--runs 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid

from temporalio.worker import Worker as TemporalWorker

import tether
from benchmarks import human_workloads as w
from benchmarks import raw_human_workloads as raw
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.engine.sandbox import sandbox_runner


async def tether_round(address: str, n: int) -> tuple[float, float, float]:
    """(answer seconds, list seconds, bare visibility seconds) for n runs through tether."""
    conn = Connection(address=address, task_queue=f"bench-h-{uuid.uuid4().hex[:8]}")
    client = tether.Client(await conn.connect(), conn)
    async with tether.Worker(client, workflows=[w.bench_ask], steps=[]):
        runs = await asyncio.gather(*(client.start(w.bench_ask, i) for i in range(n)))
        t_list = await _until_listed(client, conn.task_queue, n)
        t_bare = await _timed(lambda: _bare_list(client, conn.task_queue))
        start = time.perf_counter()
        await asyncio.gather(*(client.tasks.answer(f"{r.id}.1", {"approved": True, "amount": i}, by="bench")
                               for i, r in enumerate(runs)))
        await asyncio.gather(*(r.result() for r in runs))
        return time.perf_counter() - start, t_list, t_bare


async def raw_round(address: str, n: int) -> float:
    """Answer seconds for n runs written directly with temporalio."""
    conn = Connection(address=address, task_queue=f"bench-r-{uuid.uuid4().hex[:8]}")
    client = tether.Client(await conn.connect(), conn)  # same converter and codec as tether's
    queue = conn.task_queue
    async with TemporalWorker(client.temporal, task_queue=queue, workflows=[raw.BenchRawAsk],
                              workflow_runner=sandbox_runner()):  # same sandbox settings as tether
        handles = await asyncio.gather(*(client.temporal.start_workflow(
            "bench_raw_ask", i, id=f"raw-{uuid.uuid4().hex}", task_queue=queue) for i in range(n)))
        await asyncio.sleep(1.0)  # let every run reach its wait, as tether's listing ensures
        start = time.perf_counter()
        await asyncio.gather(*(h.execute_update("answer", raw.BenchApproval(approved=True, amount=i))
                               for i, h in enumerate(handles)))
        await asyncio.gather(*(h.result() for h in handles))
        return time.perf_counter() - start


async def _until_listed(client: tether.Client, queue: str, n: int) -> float:
    while True:
        start = time.perf_counter()
        found = await client.tasks.list(task_queue=queue)
        took = time.perf_counter() - start
        if len(found) == n:
            return took
        await asyncio.sleep(0.2)


async def _bare_list(client: tether.Client, queue: str) -> int:
    query = f"TetherOpenTasks IS NOT NULL AND ExecutionStatus = 'Running' AND TaskQueue = '{queue}'"
    return len([ex async for ex in client.temporal.list_workflows(query)])


async def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def main(n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as server:
        await asyncio.sleep(2)  # the frontend accepts connections a moment before it is healthy
        await tether_round(server.address, n)  # warm-up
        await raw_round(server.address, n)
        tt, tl, tb, tr = [], [], [], []
        for _ in range(rounds):
            answer, listing, bare = await tether_round(server.address, n)
            tt.append(answer)
            tl.append(listing)
            tb.append(bare)
            tr.append(await raw_round(server.address, n))
    t, r = statistics.median(tt), statistics.median(tr)
    lst, bare = statistics.median(tl), statistics.median(tb)
    print(f"workload: {n} runs, one approval each, median of {rounds} alternating rounds")
    print(f"answer phase, raw temporalio updates: {r:.2f}s  ({n / r:.0f} answers/s)")
    print(f"answer phase, tether tasks.answer:    {t:.2f}s  ({n / t:.0f} answers/s)")
    print(f"ratio tether/raw: {t / r:.2f}  (target <= 2.0)")
    print(f"listing {n} open tasks: {lst * 1000:.0f}ms vs bare visibility query {bare * 1000:.0f}ms "
          f"(ratio {lst / bare:.2f})")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.runs, a.rounds))
