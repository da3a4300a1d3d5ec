"""Rate limits across workers: 2 worker processes, 200 runs of one model call each, against a
loopback model that allows 20 requests per rolling second (429 with Retry-After beyond), with
the key limited to 20/s. Reports the peak per 1-second window, throughput against the limit
(target >= 90%) and the 429s after the first (target 0).

With `--backlog` the key is cooled while the runs start, so all their calls wait in the key's
queue when the cooldown ends (the engine's burst after a cooldown; the throughput is then the
limiter's, not how fast a loaded machine starts 200 runs).

    .venv/bin/python -m benchmarks.limits [--runs 200] [--backlog]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import uuid

import tether
from benchmarks.limits_app import LIMIT, one_call
from tether._runtime import limit_queue
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.engine.limits import cool, queue_state
from tether.testing import ChatServer, Received, Reply, chat_error, chat_reply, eventually, run_worker_process


class Provider:
    """A provider's quota: at most `limit` requests in any rolling second, else 429 + Retry-After."""

    def __init__(self, limit: float) -> None:
        self.limit = int(limit)
        self.ok: list[float] = []
        self.refused: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, r: Received) -> Reply:
        with self._lock:
            recent = [t for t in self.ok if t > r.at - 1.0]
            if len(recent) >= self.limit:
                self.refused.append(r.at)
                return chat_error(429, "rate limit reached", retry_after=round(recent[0] + 1.0 - r.at, 3) or 0.01)
            self.ok.append(r.at)
            return chat_reply("OK", delay=0.05)


def peak_window(times: list[float]) -> int:
    """The most requests within any 1-second window."""
    ts, best, j = sorted(times), 0, 0
    for i, t in enumerate(ts):
        j = max(j, i)
        while j < len(ts) and ts[j] < t + 1.0:
            j += 1
        best = max(best, j - i)
    return best


async def main(runs: int, backlog: bool = False) -> None:
    provider = Provider(LIMIT)
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as dev, \
            ChatServer(default=provider) as chat:
        conn = Connection(address=dev.address, task_queue=f"bench-limits-{uuid.uuid4().hex[:8]}")
        client = tether.Client(await conn.connect(), conn)
        procs = [run_worker_process("benchmarks.limits_app", address=dev.address, task_queue=conn.task_queue,
                                    env=dict(os.environ)) for _ in range(2)]
        try:
            queue = limit_queue(conn.task_queue, "openai-compatible:bench-limited@*")

            async def polled() -> None:
                assert (await queue_state(client.temporal, conn.namespace, queue)).workers == 2

            await eventually(polled, timeout=60)
            model = chat.model("bench-limited")
            starting = asyncio.gather(*(client.start(one_call, model) for _ in range(runs)))
            if backlog:  # paused until every call waits in the key's queue; then it ends within 2 s
                while (await queue_state(client.temporal, conn.namespace, queue)).backlog < runs:
                    await cool(client.temporal, conn.namespace, queue, 2.0, "benchmark: a backlog builds")
                    await asyncio.sleep(0.5)
            handles = await starting
            results = await asyncio.gather(*(h.result(timeout=600) for h in handles))
        finally:
            for p in procs:
                p.kill()
                p.wait()
    assert results == ["OK"] * runs
    ok = sorted(provider.ok)
    span = ok[-1] - ok[0]
    rate = (len(ok) - 1) / span if span else float("inf")
    waiting = " (calls waiting when a cooldown ends)" if backlog else ""
    print(f"{runs} runs{waiting}, 2 worker processes, key limited to {LIMIT:g}/s, "
          f"provider allows {LIMIT:g} per rolling second")
    print(f"  peak requests in a 1-second window: {peak_window([r.at for r in chat.requests])} "
          f"(accepted: {peak_window(ok)})")
    print(f"  throughput: {rate:.1f} accepted requests/s = {rate / LIMIT:.0%} of the limit (target >= 90%)")
    print(f"  429s: {len(provider.refused)} ({max(0, len(provider.refused) - 1)} after the first; target 0)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--backlog", action="store_true", help="start the runs while the key is cooled")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.backlog))
    os._exit(0)
