"""History growth of a long agent run: a 50-turn scripted agent (one tool call per turn, each
result ~600 characters) through `tether.Agent`, which keeps the conversation out of band,
against the naive loop that puts the whole conversation in every model step's input. Same
run, same model script, same tool. Targets: bytes per turn bounded (no growth with the turn
number) and total history <= 0.2x the naive one.

    .venv/bin/python -m benchmarks.agent_history [--turns 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid

from temporalio.api.enums.v1 import EventType

import tether
from benchmarks import agent_workloads as w
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.llm import STEP_NAME


async def history(client: tether.Client, run_id: str) -> tuple[int, list[int]]:
    """(total bytes, bytes per turn) of a run's history; a turn starts when a model step is scheduled."""
    per_turn: list[int] = [0]
    total = 0
    async for ev in client.temporal.get_workflow_handle(run_id).fetch_history_events():
        size = ev.ByteSize()
        total += size
        if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED and \
                ev.activity_task_scheduled_event_attributes.activity_type.name == STEP_NAME:
            per_turn.append(0)
        per_turn[-1] += size
    return total, per_turn[1:]


async def measure(client: tether.Client, wf: tether.Workflow[[int], int], turns: int) -> tuple[int, list[int], float]:
    started = time.perf_counter()
    run = await client.start(wf, turns, id=f"{wf.name}-{uuid.uuid4().hex[:8]}")
    assert await run.result() == turns
    seconds = time.perf_counter() - started
    total, per_turn = await history(client, run.id)
    return total, per_turn, seconds


def _band(per_turn: list[int], first: bool) -> float:
    part = per_turn[:10] if first else per_turn[-11:-1]  # the last turn is the final answer
    return statistics.mean(part)


async def main(turns: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as dev:
        os.environ["TETHER_PAYLOAD_STORE"] = os.path.join(tmp, "payloads")
        conn = Connection(address=dev.address, task_queue=f"bench-agent-{uuid.uuid4().hex[:8]}")
        client = tether.Client(await conn.connect(), conn)
        async with tether.Worker(client):
            refs = await measure(client, w.bench_agent_refs, turns)
            naive = await measure(client, w.bench_agent_naive, turns)
    print(f"workload: {turns}-turn scripted agent, one tool call per turn (~{len(w.SNIPPET) + 20} character "
          "results), one worker, dev server; history bytes as Temporal stores them (encrypted payloads "
          "when a key is configured)")
    print(f"{'':24}{'total bytes':>14}{'bytes/turn 1-10':>18}{'bytes/turn 40-49':>19}{'max turn':>10}{'wall':>8}")
    for label, (total, per_turn, secs) in (("tether.Agent (refs)", refs), ("naive (full transcript)", naive)):
        print(f"{label:24}{total:>14,}{_band(per_turn, True):>18,.0f}{_band(per_turn, False):>19,.0f}"
              f"{max(per_turn):>10,}{secs:>7.1f}s")
    growth = _band(refs[1], False) / _band(refs[1], True)
    print(f"per-turn growth, late/early turns:  tether.Agent {growth:.2f}x (target: bounded, ~1x); "
          f"naive {_band(naive[1], False) / _band(naive[1], True):.2f}x")
    print(f"total history ratio tether.Agent / naive: {refs[0] / naive[0]:.3f}x  (target <= 0.2x)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--turns", type=int, default=50)
    asyncio.run(main(p.parse_args().turns))
