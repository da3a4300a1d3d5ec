"""Model-call workloads with and without a budget (a scripted model answers at once)."""

from __future__ import annotations

import tether
from tether import llm
from tether.testing import ScriptedModel

BENCH_MODEL = ScriptedModel("bench-budget", lambda call: "ok")


@tether.workflow
async def calls_unbudgeted(calls: int) -> int:
    for i in range(calls):
        await llm.chat(f"q{i}", model=BENCH_MODEL.model)
    return calls


@tether.workflow(budget=tether.Budget(max_model_calls=10_000, max_tokens=10_000_000, max_cost_usd=100.0))
async def calls_budgeted(calls: int) -> int:
    for i in range(calls):
        await llm.chat(f"q{i}", model=BENCH_MODEL.model)
    return calls
