"""Rate limits across workers: 2 worker processes, 200 runs of one model call each, against a
loopback model that allows 20 requests per rolling second (429 with Retry-After beyond), with
the key limited to 20/s. Reports the peak per 1-second window, throughput against the limit
(target >= 90%) and the 429s after the first (target 0).

Two scenarios, each with fresh workers and a fresh server:
- backlog (the target's): the key is cooled while the runs start, so all their calls wait in
  the key's queue when the cooldown ends: what the limiter lets through when calls are waiting
  (a batch job behind a paused key).
- free start: the runs start at once and each call joins the key as its run reaches it. On a
  loaded 2-core machine the runs reach their calls slower than the limit, so the throughput is
  also reported against that supply (when each call was scheduled, from the runs' histories).

    .venv/bin/python -m benchmarks.limits [--runs 200] [--only backlog|free] [--answer 0.05]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import logging
import os
import tempfile
import threading
import time
import uuid
from datetime import UTC

import tether
from benchmarks.limits_app import LIMIT, one_call
from tether._runtime import limit_queue
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.engine.limits import cool, queue_state
from tether.testing import ChatServer, Received, Reply, chat_error, chat_reply, eventually, run_worker_process


class Provider:
    """A provider's quota: at most `limit` requests in any rolling second, else 429 + Retry-After."""

    def __init__(self, limit: float, answer: float = 0.05) -> None:
        self.limit = int(limit)
        self.answer = answer
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
            return chat_reply("OK", delay=self.answer)


def peak_window(times: list[float]) -> int:
    """The most requests within any 1-second window."""
    ts, best, j = sorted(times), 0, 0
    for i, t in enumerate(ts):
        j = max(j, i)
        while j < len(ts) and ts[j] < t + 1.0:
            j += 1
        best = max(best, j - i)
    return best


async def scheduled_at(client: tether.Client, handles: list[tether.Run[str]]) -> list[float]:
    """When each run's model call was scheduled, on this process's monotonic clock."""
    offset = time.time() - time.monotonic()
    out = []
    for h in handles:
        async for event in client.temporal.get_workflow_handle(h.id).fetch_history_events():
            if event.HasField("activity_task_scheduled_event_attributes"):
                out.append(event.event_time.ToDatetime(tzinfo=UTC).timestamp() - offset)
    return sorted(out)


def _waiting_share(scheduled: list[float], accepted: list[float], step: float = 0.01) -> float:
    """The share of [first, last accepted] during which some call had been scheduled and not yet accepted."""
    start, end = accepted[0], accepted[-1]
    ticks = max(1, int((end - start) / step))
    busy = 0
    for i in range(ticks):
        t = start + i * step
        busy += bisect.bisect_right(scheduled, t) > bisect.bisect_right(accepted, t)
    return busy / ticks


async def scenario(runs: int, backlog: bool, answer: float = 0.05) -> None:
    """One scenario with fresh workers and server; prints its figures."""
    provider = Provider(LIMIT, answer)
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
            if backlog:  # paused before the first run starts, until every call waits in the key's queue
                await cool(client.temporal, conn.namespace, queue, 2.0, "benchmark: a backlog builds")
            starting = asyncio.gather(*(client.start(one_call, model) for _ in range(runs)))
            if backlog:  # then the cooldown ends within 2 s
                while (await queue_state(client.temporal, conn.namespace, queue)).backlog < runs:
                    await cool(client.temporal, conn.namespace, queue, 2.0, "benchmark: a backlog builds")
                    await asyncio.sleep(0.5)
            handles = await starting
            results = await asyncio.gather(*(h.result(timeout=600) for h in handles))
            scheduled = await scheduled_at(client, handles)
        finally:
            for p in procs:
                p.kill()
                p.wait()
    assert results == ["OK"] * runs
    ok = sorted(provider.ok)
    span = ok[-1] - ok[0]
    rate = (len(ok) - 1) / span if span else float("inf")
    print(f"{runs} runs, " + ("backlog: all calls waiting when the key's cooldown ends" if backlog
                              else "free start: each call joins the key as its run reaches it"))
    print(f"  peak requests in a 1-second window: {peak_window([r.at for r in chat.requests])} "
          f"(accepted: {peak_window(ok)})")
    print(f"  throughput: {rate:.1f} accepted requests/s = {rate / LIMIT:.0%} of the limit"
          + (" (target >= 90%)" if backlog else ""))
    if not backlog:  # did the key lack calls? the share of the span with a call waiting for it
        waiting = _waiting_share(scheduled, ok)
        print(f"  calls joined the key at {(len(scheduled) - 1) / (scheduled[-1] - scheduled[0]):.1f}/s as their "
              f"runs reached them; a call was waiting for the key during {waiting:.0%} of the span")
    print(f"  429s: {len(provider.refused)} ({max(0, len(provider.refused) - 1)} after the first; target 0)")


async def main(runs: int, only: str | None = None, answer: float = 0.05) -> None:
    logging.getLogger("tether.limits").setLevel(logging.ERROR)  # not each cooldown the backlog uses
    print(f"2 worker processes, key limited to {LIMIT:g}/s, provider allows {LIMIT:g} per rolling second, "
          f"answering in {answer:g} s, load average {os.getloadavg()[0]:.1f}")
    for backlog in (True, False):
        if only is None or only == ("backlog" if backlog else "free"):
            await scenario(runs, backlog, answer)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--only", choices=["backlog", "free"], help="run one scenario")
    parser.add_argument("--answer", type=float, default=0.05,
                        help="seconds the model takes to answer (model calls take 1-30 s in production)")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.only, args.answer))
    os._exit(0)
