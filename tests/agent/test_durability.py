"""Acceptance: killing the worker process between turns resumes the agent without repeating
completed turns or tool calls."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import tether
from tests.agent.conftest import RunLog
from tests.apps import agent_flows as app
from tether.testing import run_worker_process


async def _between_turns(client: tether.Client, run: tether.Run[Any]) -> tether.HumanTask:
    """Wait until turn 2's tools are done (the failing one failed for good) and its approval is open."""
    for _ in range(600):
        tasks = await client.tasks.list(run_id=run.id)
        steps = (await run.describe()).steps
        if tasks and any(s.name == "agent_orders" and s.status == "failed" for s in steps):
            return tasks[0]
        await asyncio.sleep(0.1)
    raise AssertionError("the agent never reached its approval")


async def test_killed_worker_resumes_without_repeating_turns_or_tools(
        tether_client: tether.Client, run_log: RunLog) -> None:
    conn = tether_client.connection
    first = run_worker_process("tests.apps.agent_flows", address=conn.address, task_queue=conn.task_queue)
    try:
        run = await tether_client.start(app.agent_support, "Refund order o-1 for ada")
        task = await _between_turns(tether_client, run)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        async with tether.Worker(tether_client):
            await tether_client.tasks.answer(task.id, True, by="test")
            result = await asyncio.wait_for(run.result(), 60)
    finally:
        if first.poll() is None:
            first.kill()

    assert result.output.refunded and result.turns == 3
    turns = run_log.entries("model")
    assert [t["turn"] for t in turns] == [1, 2, 3]  # no turn asked twice
    assert {t["pid"] for t in turns[:2]} == {first.pid} and turns[2]["pid"] == os.getpid()
    lookups = run_log.entries("tool", name="agent_lookup", phase="start")
    assert sorted(e["customer"] for e in lookups) == ["ada", "bob"]  # each tool call ran once
    assert {e["pid"] for e in lookups} == {first.pid}
    assert [e["pid"] for e in run_log.entries("tool", name="agent_orders")] == [first.pid] * 2  # its 2 attempts
    assert [e["pid"] for e in run_log.entries("tool", name="agent_refund")] == [os.getpid()]
