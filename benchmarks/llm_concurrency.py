"""Concurrent model calls: 200 workflows x 3 sequential calls to a loopback OpenAI-compatible
server that answers after 200 ms, one worker. Compared, in alternating rounds of the same run,
with the same 600 calls made directly over raw asyncio connections (what the model alone
allows: the floor). Target: tether / bare <= 4.0x.

    .venv/bin/python -m benchmarks.llm_concurrency [--workflows 200] [--calls 3] [--latency 0.2]
        [--rounds 3] [--zero-latency]

`--zero-latency` also times the tether workload against a server that answers at once
(what orchestration alone costs). `--processes N` serves the runs with `tether worker --processes N`
(N worker processes) instead of one worker in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

import tether
from benchmarks.llm_workloads import ChatJob, bench_llm_chat
from tether import llm, settings
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.testing import ChatServer, chat_reply

CPU: dict[str, list[float]] = {"tether": [], "server": [], "bare": [], "raw": [], "raw server": []}
"""CPU seconds each timed round used: this process (client, worker, chat server), the dev server."""


def _cpu(pid: int | None) -> float:
    """CPU seconds used so far by process `pid` (Linux), or by this process when None."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def tether_round(address: str, server: ChatServer, n: int, calls: int, slots: int,
                       server_pid: int | None = None) -> float:
    """Seconds for n concurrent workflows of `calls` sequential model calls (one worker)."""
    conn = Connection(address=address, task_queue=f"bench-llm-{uuid.uuid4().hex[:8]}")
    client = tether.Client(await conn.connect(), conn)
    job = ChatJob(model=server.model("bench"), prompt="Say OK.", calls=calls)
    async with tether.Worker(client, workflows=[bench_llm_chat], steps=[llm.call_model],
                             max_concurrent_steps=slots):
        await client.run(bench_llm_chat, job)  # warm-up: the worker's first poll, connections
        start, cpu, cpu_server = time.perf_counter(), _cpu(None), _cpu(server_pid) if server_pid else 0.0
        await asyncio.gather(*(client.run(bench_llm_chat, job) for _ in range(n)))
        took = time.perf_counter() - start
        if server_pid:
            CPU["tether"].append(_cpu(None) - cpu)
            CPU["server"].append(_cpu(server_pid) - cpu_server)
        return took


async def processes_round(address: str, server: ChatServer, n: int, calls: int, processes: int) -> float:
    """Seconds for the same workload served by `tether worker --processes N` (started beforehand)."""
    conn = Connection(address=address, task_queue=f"bench-llm-{uuid.uuid4().hex[:8]}")
    client = tether.Client(await conn.connect(), conn)
    job = ChatJob(model=server.model("bench"), prompt="Say OK.", calls=calls)
    cmd = [sys.executable, "-m", "tether", "worker", "benchmarks.llm_workloads", "--processes", str(processes),
           "--address", address, "--task-queue", conn.task_queue, "--allow-plaintext"]
    proc = subprocess.Popen(cmd, env=settings.child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while len(await _pollers(client)) < processes:
            await asyncio.sleep(0.2)
        await asyncio.gather(*(client.run(bench_llm_chat, job) for _ in range(processes)))  # warm-up
        start = time.perf_counter()
        await asyncio.gather(*(client.run(bench_llm_chat, job) for _ in range(n)))
        return time.perf_counter() - start
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)


async def _pollers(client: tether.Client) -> set[str]:
    resp = await client.temporal.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.connection.namespace, task_queue=TaskQueue(name=client.connection.task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
    return {p.identity for p in resp.pollers}


async def bare_round(server: ChatServer, n: int, calls: int) -> float:
    """Seconds for the same calls made directly: n tasks, each its own keep-alive connection."""
    from benchmarks.raw_fanout import chat_request, exchange

    url = urlsplit(server.url)
    request = chat_request(server.url)

    async def one() -> None:
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        try:
            for _ in range(calls):
                await exchange(reader, writer, request)
        finally:
            writer.close()

    start, cpu = time.perf_counter(), _cpu(None)
    await asyncio.gather(*(one() for _ in range(n)))
    CPU["bare"].append(_cpu(None) - cpu)
    return time.perf_counter() - start


async def raw_round(address: str, server: ChatServer, n: int, calls: int, server_pid: int | None = None) -> float:
    """Seconds for the same workload written directly with temporalio (activities making raw HTTP calls)."""
    from temporalio.client import Client as TemporalClient
    from temporalio.worker import Worker as TemporalWorker

    from benchmarks import raw_fanout

    client = await TemporalClient.connect(address)
    queue = f"raw-fanout-{uuid.uuid4().hex[:8]}"
    async with TemporalWorker(client, task_queue=queue, workflows=[raw_fanout.BenchRawFanout],
                              activities=[raw_fanout.raw_chat], max_concurrent_activities=n):
        async def one() -> None:
            await client.execute_workflow("bench_raw_fanout", args=[server.url, calls],
                                          id=f"raw-{uuid.uuid4().hex}", task_queue=queue)

        await one()  # warm-up
        start, cpu, cpu_server = time.perf_counter(), _cpu(None), _cpu(server_pid) if server_pid else 0.0
        await asyncio.gather(*(one() for _ in range(n)))
        took = time.perf_counter() - start
        if server_pid:
            CPU["raw"].append(_cpu(None) - cpu)
            CPU["raw server"].append(_cpu(server_pid) - cpu_server)
        return took


async def main(n: int, calls: int, latency: float, rounds: int, slots: int, zero: bool,
               processes: int) -> None:
    slow, fast = ChatServer(default=chat_reply("OK", delay=latency)), ChatServer(default=chat_reply("OK"))
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as dev, slow, fast:
        await bare_round(slow, n, calls)  # warm-up
        t_bare, t_tether, t_zero, t_procs, t_raw = [], [], [], [], []
        for _ in range(rounds):
            t_bare.append(await bare_round(slow, n, calls))
            pid = dev.process.pid if dev.process else None
            t_raw.append(await raw_round(dev.address, slow, n, calls, pid))
            t_tether.append(await tether_round(dev.address, slow, n, calls, slots, pid))
            if zero:
                t_zero.append(await tether_round(dev.address, fast, n, calls, slots))
            if processes:
                t_procs.append(await processes_round(dev.address, slow, n, calls, processes))
    tb, tt, tr = statistics.median(t_bare), statistics.median(t_tether), statistics.median(t_raw)
    print(f"workload: {n} workflows x {calls} sequential model calls, {latency * 1000:.0f} ms server latency, "
          f"one worker ({slots} step slots), loopback OpenAI-compatible server; median of {rounds} "
          "alternating rounds")
    print(f"bare calls (raw asyncio connections): {tb:.2f}s  ({n * calls / tb:.0f} calls/s)")
    print(f"tether:                               {tt:.2f}s  ({n * calls / tt:.0f} calls/s)"
          f"  rounds: {', '.join(f'{t:.2f}' for t in t_tether)}")
    if t_zero:
        print(f"tether at 0 ms latency:               {statistics.median(t_zero):.2f}s  (orchestration alone)")
    print(f"raw temporalio (same calls as activities): {tr:.2f}s  ({n * calls / tr:.0f} calls/s)"
          f"  rounds: {', '.join(f'{t:.2f}' for t in t_raw)}")
    print(f"ratio tether / bare:                  {tt / tb:.2f}x  (target <= 4.0x)")
    print(f"ratio raw temporalio / bare:          {tr / tb:.2f}x  (the engine's own floor here)")
    print(f"ratio tether / raw temporalio:        {tt / tr:.2f}x")
    if t_procs:
        tp = statistics.median(t_procs)
        rounds_text = ", ".join(f"{t:.2f}" for t in t_procs)
        print(f"tether, {processes} worker processes:          {tp:.2f}s  rounds: {rounds_text}  "
              f"ratio / bare {tp / tb:.2f}x")
    med = {k: statistics.median(v) for k, v in CPU.items() if v}
    print(f"CPU seconds per round (median): bare {med['bare']:.2f}; tether: client+worker {med['tether']:.2f}, "
          f"dev server {med['server']:.2f}; raw temporalio: client+worker {med.get('raw', 0):.2f}, "
          f"dev server {med.get('raw server', 0):.2f}  (machine load {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workflows", type=int, default=200)
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--latency", type=float, default=0.2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--slots", type=int, default=200, help="max_concurrent_steps of the worker")
    p.add_argument("--zero-latency", action="store_true", help="also time the workload at 0 ms latency")
    p.add_argument("--processes", type=int, default=0, help="also time it with `tether worker --processes N`")
    a = p.parse_args()
    asyncio.run(main(a.workflows, a.calls, a.latency, a.rounds, a.slots, a.zero_latency, a.processes))
