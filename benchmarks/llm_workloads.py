"""Workflows the LLM benchmarks run (a module of its own: Temporal's sandbox re-imports it)."""

from __future__ import annotations

from pydantic import BaseModel

import tether
from tether import llm


class ChatJob(BaseModel):
    model: str
    prompt: str
    max_tokens: int | None = None
    calls: int = 1


class ChatDone(BaseModel):
    text: str
    output_tokens: int


@tether.workflow
async def bench_llm_chat(job: ChatJob) -> ChatDone:
    """`calls` model calls one after the other; returns the last reply and all output tokens."""
    text, tokens = "", 0
    for _ in range(job.calls):
        reply = await llm.chat(job.prompt, model=job.model, max_tokens=job.max_tokens, temperature=0.0)
        text, tokens = reply.text, tokens + reply.usage.output_tokens
    return ChatDone(text=text, output_tokens=tokens)
