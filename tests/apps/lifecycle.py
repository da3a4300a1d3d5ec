"""Workflows for the production-lifecycle tests: schedules and the model-call cache."""

from __future__ import annotations

from pydantic import BaseModel

import tether
from tether import llm


class Batch(BaseModel):
    day: str


@tether.step
def count_invoices(batch: Batch) -> int:
    return len(batch.day)


@tether.workflow
async def invoice_batch(batch: Batch) -> int:
    return await count_invoices(batch)


class Question(BaseModel):
    model: str
    prompt: str


@tether.workflow
async def ask_twice(q: Question) -> list[str]:
    first = await llm.chat(q.prompt, model=q.model)
    second = await llm.chat(q.prompt, model=q.model)
    return [first.text, second.text]


@tether.step
def settle(seconds: float) -> str:
    return f"settled after {seconds:g}s"


@tether.workflow(versioning="pinned")
async def pinned_settlement(seconds: float) -> str:
    await tether.sleep(seconds)
    return await settle(seconds)
