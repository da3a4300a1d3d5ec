"""Workflows the agent benchmark runs (a module of its own: Temporal's sandbox re-imports it).

The same scripted agent twice: through `tether.Agent` (the conversation kept out of band,
each turn's step carries a reference and the new messages) and naively (every model step
carries the whole conversation so far, as a plain loop over `tether.llm` would).
"""

from __future__ import annotations

from typing import Any

import tether
from tether.llm import Message, ModelCall
from tether.llm._calls import ask
from tether.testing import ScriptedModel
from tether.tools import StepTool

SNIPPET = ("Order history: 3 orders in 2025, last one shipped to Lyon on 12 March; plan 'gold' since 2021; "
           "two support tickets, both resolved within a day; preferred language French; no open refunds. ") * 3


@tether.step
def bench_lookup(query: str) -> str:
    """Look something up about the customer (returns a ~600-character note)."""
    return f"[{query}] {SNIPPET}"


def _script(call: ModelCall) -> Any:
    turns = int(next(m.content for m in call.messages if m.role == "user").split("=")[1])
    turn = 1 + sum(1 for m in call.messages if m.role == "assistant")
    if turn < turns:
        return {"tool_calls": [{"name": "bench_lookup", "arguments": {"query": f"question {turn}"}}]}
    return {"final": f"done after {turn} turns"}


MODEL = ScriptedModel("bench-agent", _script)
INSTRUCTIONS = "You are a support agent. Look things up with the tools until you know enough, then answer."
agent = tether.Agent(MODEL.model, name="bench", instructions=INSTRUCTIONS, tools=[bench_lookup], max_turns=500)
LOOKUP = StepTool(bench_lookup)


@tether.workflow
async def bench_agent_refs(turns: int) -> int:
    """The agent through tether.Agent: transcript out of band."""
    result = await agent.run(f"turns={turns}")
    return result.turns


@tether.workflow
async def bench_agent_naive(turns: int) -> int:
    """The same agent with the whole conversation in every model step's input."""
    messages = [Message(role="system", content=INSTRUCTIONS), Message(role="user", content=f"turns={turns}")]
    for turn in range(1, 501):
        reply = await ask(ModelCall(model=MODEL.model, messages=messages, tools=[LOOKUP.spec], purpose="agent"))
        messages.append(Message(role="assistant", content=reply.text, tool_calls=reply.tool_calls or None))
        if not reply.tool_calls:
            return turn
        results = await tether.gather(*(LOOKUP.run(LOOKUP.check(c.arguments)) for c in reply.tool_calls))
        messages += [Message(role="tool", content=text, tool_call_id=c.id, name=c.name)
                     for c, (text, _) in zip(reply.tool_calls, results, strict=True)]
    raise AssertionError("the scripted agent never finished")
