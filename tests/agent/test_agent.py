"""Acceptance: a 3-turn agent with concurrent tool calls, a failing tool, bad arguments and an
approval, through a real workflow run; max_turns; the turn history that `tether show` reads."""

from __future__ import annotations

import asyncio

import pytest

import tether
from tests.agent.conftest import RunLog
from tests.apps import agent_flows as app
from tether import llm


async def _answer_approval(client: tether.Client, run_id: str, answer: bool) -> tether.HumanTask:
    for _ in range(200):
        tasks = await client.tasks.list(run_id=run_id)
        if tasks:
            (task,) = tasks
            await client.tasks.answer(task.id, answer, by="test")
            return task
        await asyncio.sleep(0.1)
    raise AssertionError("no approval task opened")


async def test_three_turns_concurrent_tools_failure_bad_args_and_approval(
        tether_client: tether.Client, run_log: RunLog) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.agent_support, "Refund order o-1 for ada")
        task = await _answer_approval(tether_client, run.id, True)
        result = await asyncio.wait_for(run.result(), 60)
        detail = await run.describe()

    assert "refund" in task.question and '"order_id": "o-1"' in task.question and task.assignee == "finance"
    assert result.output.refunded and "refunded 12.50 on o-1" in result.output.summary
    assert result.turns == 3 and result.tool_calls == 5
    tool_msgs = {m.tool_call_id: m.content for m in result.transcript if m.role == "tool"}
    contents = list(tool_msgs.values())
    assert any("invalid arguments for agent_lookup" in c and "customer" in c for c in contents)
    assert any(c.startswith("error: agent_orders failed") and "order service unavailable" in c for c in contents)
    assert result.usage.calls == 3 and result.usage.by_model[app.SUPPORT_MODEL.model].calls == 3

    # each turn is one model step; the two good lookups ran at the same time
    model_steps = [s for s in detail.steps if s.name == llm.STEP_NAME]
    assert len(model_steps) == 3 and all(s.status == "completed" for s in model_steps)
    lookups = [s for s in detail.steps if s.name == "agent_lookup"]
    assert len(lookups) == 2
    a, b = lookups
    assert a.scheduled_at and b.scheduled_at and a.ended_at and b.ended_at
    assert a.scheduled_at < b.ended_at and b.scheduled_at < a.ended_at  # overlapping: concurrent
    assert (max(a.ended_at, b.ended_at) - min(a.scheduled_at, b.scheduled_at)).total_seconds() < 1.9
    orders = [s for s in detail.steps if s.name == "agent_orders"]
    assert len(orders) == 1 and orders[0].status == "failed" and orders[0].attempts == 2  # its own retries first
    assert [e["customer"] for e in run_log.entries("tool", name="agent_orders")] == ["ada", "ada"]
    assert len(run_log.entries("tool", name="agent_refund")) == 1


async def test_refused_approval_goes_back_to_the_model(tether_client: tether.Client, run_log: RunLog) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.agent_support, "Refund order o-1 for ada")
        await _answer_approval(tether_client, run.id, False)
        result = await asyncio.wait_for(run.result(), 60)
    assert not result.output.refunded
    assert "refund: refused: a person did not approve" in result.output.summary
    assert run_log.entries("tool", name="agent_refund") == []


async def test_max_turns_raises_with_the_transcript(tether_client: tether.Client, run_log: RunLog) -> None:
    async with tether.Worker(tether_client):
        out = await asyncio.wait_for(tether_client.run(app.agent_looping, "loop"), 60)
    assert out.error_type == "MaxTurnsExceeded"
    assert "agent 'looper' reached max_turns=3" in out.message
    assert out.transcript_roles == ["user", *["assistant", "tool"] * 3]
    assert len(run_log.entries("tool", name="agent_refund")) == 3


async def test_repeated_calls_do_not_run_twice(tether_client: tether.Client, run_log: RunLog) -> None:
    async with tether.Worker(tether_client):
        out = await asyncio.wait_for(tether_client.run(app.agent_repeating, "refund o-9"), 60)
    first, same_turn, next_turn, next_same_turn = out.split(" | ")
    assert next_same_turn == same_turn
    assert first == "refunded 5.00 on o-9"
    assert same_turn == "error: the same call of agent_refund is already in this turn; not run"
    assert next_turn.startswith("error: you already called agent_refund with these arguments; the result was: "
                                "refunded 5.00 on o-9")
    assert len(run_log.entries("tool", name="agent_refund")) == 1


async def test_long_agent_continues_as_new_with_its_conversation(tether_client: tether.Client,
                                                                 run_log: RunLog) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.agent_long, app.LongJob(task="refund four orders"))
        done = await asyncio.wait_for(run.result(), 60)
    # 5 turns, 2 per run: the third run gives the answer, having seen every earlier tool result
    assert (done.output, done.turns, done.runs, done.usage_calls) == ("saw 4 tool results", 5, 3, 5)
    assert [e["order_id"] for e in run_log.entries("tool", name="agent_refund")] == ["o-1", "o-2", "o-3", "o-4"]


async def test_sensitive_values_reach_the_model_as_previews_and_handles_are_stopped(
        tether_client: tether.Client) -> None:
    before = len(app.SOV_MODEL.calls)
    async with tether.Worker(tether_client, queues=["main", "agentvault"]):
        run = await tether_client.start(app.agent_sov, "who is ann?")
        with pytest.raises(tether.RunFailed) as info:
            await asyncio.wait_for(run.result(), 60)
    assert info.value.error_type == "EgressBlocked"
    assert "'ssn' from zone 'agentvault'" in str(info.value) and app.SOV_MODEL.model in str(info.value)
    seen = [m.content for call in app.SOV_MODEL.calls[before:] for m in call.messages]
    assert len(app.SOV_MODEL.calls) - before == 2  # the third turn, with the handle in it, never went out
    assert any("<ssn (sensitive): ***-**-6789>" in c for c in seen)
    assert not any("123-45-6789" in c or "<<sensitive:" in c for c in seen)
