"""Agents, tools and scripted models used by the agent tests (in-process and subprocess workers).

The scripted models answer from the conversation they are shown (the turn number is the
count of assistant messages), so a worker started after a crash answers the same way.
Each tool and model call appends a line to the file named by AGENT_LOG (when set), so
tests can count what ran, where and when.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from pydantic import BaseModel

import tether
from tether.llm import ModelCall
from tether.testing import ScriptedModel


def log(kind: str, **facts: Any) -> None:
    path = os.environ.get("AGENT_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"kind": kind, "pid": os.getpid(), "at": time.time(), **facts}) + "\n")


class Resolution(BaseModel):
    summary: str
    refunded: bool


FAST = tether.RetryPolicy(max_attempts=2, initial_interval="100ms", max_interval="100ms")


@tether.step
async def agent_lookup(customer: str) -> dict[str, str]:
    """Look up a customer's plan.

    Args:
        customer: The customer's handle.
    """
    log("tool", name="agent_lookup", customer=customer, phase="start")
    await asyncio.sleep(1.0)
    log("tool", name="agent_lookup", customer=customer, phase="end")
    return {"customer": customer, "plan": "gold" if customer == "ada" else "basic"}


@tether.step(attempts=FAST)
def agent_orders(customer: str) -> list[str]:
    """List a customer's open orders (the order service is down in these tests)."""
    log("tool", name="agent_orders", customer=customer)
    raise ConnectionError("order service unavailable")


@tether.step
def agent_refund(order_id: str, amount: float) -> str:
    """Refund an order."""
    log("tool", name="agent_refund", order_id=order_id, amount=amount)
    return f"refunded {amount:.2f} on {order_id}"


def _turn(call: ModelCall) -> int:
    return 1 + sum(1 for m in call.messages if m.role == "assistant")


def _results(call: ModelCall) -> dict[str, str]:
    return {m.name or "": m.content for m in call.messages if m.role == "tool"}


def _support_script(call: ModelCall) -> Any:
    turn = _turn(call)
    log("model", turn=turn, tools=[t.name for t in call.tools])
    if turn == 1:
        return {"tool_calls": [{"name": "agent_lookup", "arguments": {"customer": "ada"}},
                               {"name": "agent_lookup", "arguments": {"customer": "bob"}},
                               {"name": "agent_lookup", "arguments": {"client": 7}}]}
    if turn == 2:
        return {"tool_calls": [{"name": "agent_orders", "arguments": {"customer": "ada"}},
                               {"name": "refund", "arguments": {"order_id": "o-1", "amount": 12.5}}]}
    refund = _results(call).get("refund", "")
    return {"final": {"summary": f"orders: {_results(call).get('agent_orders', '')[:60]} | refund: {refund}",
                      "refunded": refund.startswith("refunded")}}


SUPPORT_MODEL = ScriptedModel("agent-support", _support_script)

support = tether.Agent(
    SUPPORT_MODEL.model, name="support", instructions="Help the customer.", output_type=Resolution,
    tools=[agent_lookup, agent_orders, tether.tool(agent_refund, name="refund", needs_approval=True,
                                                   approver="finance")],
    max_turns=5)


@tether.workflow
async def agent_support(task: str) -> tether.AgentResult[Resolution]:
    return await support.run(task)


LOOPING = ScriptedModel("agent-looping", lambda call: {"tool_calls": [
    {"name": "agent_refund", "arguments": {"order_id": f"o-{_turn(call)}", "amount": 1}}]})
looping = tether.Agent(LOOPING.model, name="looper", tools=[agent_refund], max_turns=3)


class Stopped(BaseModel):
    error_type: str
    message: str
    transcript_roles: list[str]


@tether.workflow
async def agent_looping(task: str) -> Stopped:
    try:
        await looping.run(task)
    except tether.MaxTurnsExceeded as exc:
        return Stopped(error_type=type(exc).__name__, message=str(exc),
                       transcript_roles=[m.role for m in exc.transcript])  # type: ignore[attr-defined]
    raise AssertionError("the agent should have run out of turns")


def _repeat_script(call: ModelCall) -> Any:
    if _turn(call) <= 2:
        same = {"name": "agent_refund", "arguments": {"order_id": "o-9", "amount": 5}}
        return {"tool_calls": [same, same]}
    return {"final": " | ".join(m.content for m in call.messages if m.role == "tool")}


REPEATING = ScriptedModel("agent-repeating", _repeat_script)
repeating = tether.Agent(REPEATING.model, name="repeater", tools=[agent_refund], max_turns=4)


@tether.workflow
async def agent_repeating(task: str) -> str:
    return (await repeating.run(task)).output


@tether.workflow
async def agent_native(model: str) -> tether.AgentResult[Resolution]:
    """An agent on a real OpenAI-compatible endpoint: tools and the final answer as native tool calls."""
    agent = tether.Agent(model, name="native", instructions="Resolve it.", tools=[agent_refund],
                         output_type=Resolution, max_turns=3)
    return await agent.run("Refund o-5, 3 EUR")


def _long_script(call: ModelCall) -> Any:
    turn = _turn(call)
    if turn < 5:
        return {"tool_calls": [{"name": "agent_refund", "arguments": {"order_id": f"o-{turn}", "amount": turn}}]}
    return {"final": f"saw {sum(1 for m in call.messages if m.role == 'tool')} tool results"}


LONG = ScriptedModel("agent-long", _long_script)
long_agent = tether.Agent(LONG.model, name="long", tools=[agent_refund], max_turns=10, turns_per_run=2)


class LongJob(BaseModel):
    task: str
    checkpoint: tether.AgentCheckpoint | None = None
    runs: int = 1


class LongDone(BaseModel):
    output: str
    turns: int
    runs: int
    usage_calls: int


@tether.workflow
async def agent_long(job: LongJob) -> LongDone:
    result = await long_agent.run(job.task, resume=job.checkpoint, continue_with=lambda ck: LongJob(
        task=job.task, checkpoint=ck, runs=job.runs + 1))
    return LongDone(output=result.output, turns=result.turns, runs=job.runs, usage_calls=result.usage.calls)


# ---- sensitive values meeting an agent ----------------------------------------------------


@tether.step(runs_on="agentvault")
def agent_identity(customer: str) -> dict[str, Any]:
    """The customer's identity record, kept in the vault zone."""
    return {"customer": customer, "ssn": tether.sensitive("123-45-6789", label="ssn", preview=True)}


@tether.step(runs_on="agentvault")
def agent_ssn_line(customer: str) -> str:
    """A careless tool: formats a handle into its text."""
    return f"{customer}'s ssn: {tether.sensitive('123-45-6789', label='ssn')}"


def _sov_script(call: ModelCall) -> Any:
    turn = _turn(call)
    tool = {1: "agent_identity", 2: "agent_ssn_line"}.get(turn)
    if tool:
        return {"tool_calls": [{"name": tool, "arguments": {"customer": "ann"}}]}
    return {"final": "done"}


SOV_MODEL = ScriptedModel("agent-sov", _sov_script)
sov_agent = tether.Agent(SOV_MODEL.model, name="sov", tools=[agent_identity, agent_ssn_line], max_turns=4)


@tether.workflow
async def agent_sov(task: str) -> str:
    return (await sov_agent.run(task)).output
