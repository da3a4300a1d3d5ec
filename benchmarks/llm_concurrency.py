"""Concurrent model calls: 200 workflows x 3 calls to a loopback OpenAI-compatible server that
answers after 200 ms, one worker. Compared with the ideal (3 x 200 ms) and with the same
workload at 0 ms latency (what orchestration alone costs), same run. Target <= 3x.

    .venv/bin/python -m benchmarks.llm_concurrency [--workflows 200] [--calls 3] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid

import tether
from benchmarks.llm_workloads import ChatJob, bench_llm_chat
from tether import llm
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.testing import ChatServer, chat_reply


async def one_round(address: str, server: ChatServer, n: int, calls: int, slots: int) -> float:
    """Seconds for n concurrent workflows of `calls` sequential model calls (one worker)."""
    conn = Connection(address=address, task_queue=f"bench-llm-{uuid.uuid4().hex[:8]}")
    client = tether.Client(await conn.connect(), conn)
    job = ChatJob(model=server.model("bench"), prompt="Say OK.", calls=calls)
    async with tether.Worker(client, workflows=[bench_llm_chat], steps=[llm.call_model],
                             max_concurrent_steps=slots):
        await client.run(bench_llm_chat, job)  # warm-up: connection pool, caches
        start = time.perf_counter()
        await asyncio.gather(*(client.run(bench_llm_chat, job) for _ in range(n)))
        return time.perf_counter() - start


async def main(n: int, calls: int, latency: float, rounds: int, slots: int) -> None:
    slow, fast = ChatServer(default=chat_reply("OK", delay=latency)), ChatServer(default=chat_reply("OK"))
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as dev, slow, fast:
        t_slow, t_fast = [], []
        for _ in range(rounds):
            t_slow.append(await one_round(dev.address, slow, n, calls, slots))
            t_fast.append(await one_round(dev.address, fast, n, calls, slots))
    ts, tf = statistics.median(t_slow), statistics.median(t_fast)
    ideal = calls * latency
    print(f"workload: {n} workflows x {calls} model calls, {latency * 1000:.0f} ms server latency, one worker "
          f"({slots} step slots), loopback OpenAI-compatible server; median of {rounds} rounds")
    print(f"wall time:                          {ts:.2f}s  ({n * calls / ts:.0f} calls/s)")
    print(f"same workload at 0 ms latency:      {tf:.2f}s  (orchestration alone)")
    print(f"ideal (calls x latency):            {ideal:.2f}s")
    print(f"ratio wall / ideal:                 {ts / ideal:.2f}x")
    print(f"ratio wall / (ideal + orchestration): {ts / (ideal + tf):.2f}x  (target <= 3x)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workflows", type=int, default=200)
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--slots", type=int, default=200, help="max_concurrent_steps of the worker")
    a = p.parse_args()
    asyncio.run(main(a.workflows, a.calls, a.latency, a.rounds, a.slots))
