"""Workflows with budgets, for tests/limits (each asks a loopback model several times)."""

from __future__ import annotations

from pydantic import BaseModel

import tether
from tether import llm
from tether.testing import ScriptedModel

FAST = tether.RetryPolicy(max_attempts=2, initial_interval="100ms")


class Asks(BaseModel):
    model: str
    times: int


@tether.workflow(budget=tether.Budget(max_model_calls=2))
async def two_calls_allowed(asks: Asks) -> list[str]:
    llm.configure(attempts=FAST)
    return [(await llm.chat(f"question {i}", model=asks.model)).text for i in range(asks.times)]


@tether.workflow(budget=tether.Budget(max_model_calls=2, on_exceed=tether.escalate(assignee="finance")))
async def ask_to_spend_more(asks: Asks) -> list[str]:
    llm.configure(attempts=FAST)
    return [(await llm.chat(f"question {i}", model=asks.model)).text for i in range(asks.times)]


@tether.workflow
async def child_asks(asks: Asks) -> list[str]:
    llm.configure(attempts=FAST)
    return [(await llm.chat(f"child question {i}", model=asks.model)).text for i in range(asks.times)]


@tether.workflow(budget=tether.Budget(max_model_calls=3))
async def parent_with_child(asks: Asks) -> list[str]:
    """Two calls of its own, then a child that may make only the one call left."""
    llm.configure(attempts=FAST)
    mine = [(await llm.chat(f"parent question {i}", model=asks.model)).text for i in range(2)]
    return mine + await child_asks(asks)


@tether.workflow(budget=tether.Budget(max_model_calls=4))
async def parent_then_more(asks: Asks) -> int:
    """A child's calls count in the parent: 2 in the child, then only 2 more here."""
    llm.configure(attempts=FAST)
    await child_asks(Asks(model=asks.model, times=2))
    done = 0
    for i in range(asks.times):
        await llm.chat(f"after the child {i}", model=asks.model)
        done += 1
    return done


@tether.step
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


LOOKER = ScriptedModel("budget-looker", lambda call: {"tool_calls": [
    {"name": "lookup", "arguments": {"key": f"k{sum(m.role == 'tool' for m in call.messages)}"}}]})
looker = tether.Agent(LOOKER.model, name="looker", tools=[lookup], max_turns=5)


@tether.workflow(budget=tether.Budget(max_tool_calls=1))
async def agent_with_tools(asks: Asks) -> str:
    return (await looker.run("look keys up")).output


thrifty = tether.Agent(LOOKER.model, name="thrifty", tools=[lookup], max_turns=5,
                       budget=tether.Budget(max_model_calls=2))


@tether.workflow
async def agent_with_own_budget(asks: Asks) -> str:
    return (await thrifty.run("look keys up")).output
