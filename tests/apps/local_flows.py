"""Workflows on the real local model (SmolLM2 via llama.cpp) used by the local-model isolation tests."""

from __future__ import annotations

from pydantic import BaseModel, Field

import tether
from tether import llm

FAST_RETRIES = tether.RetryPolicy(max_attempts=4, initial_interval="100ms", max_interval="200ms")


class Policy(BaseModel):
    policy_number: str = Field(pattern=r"^POL-\d{6}$")


class BoundedPolicy(BaseModel):
    policy_number: str = Field(pattern=r"\bPOL-[0-9]{6}\b")


@tether.workflow
async def read_policy(text: str) -> Policy:
    llm.configure(attempts=FAST_RETRIES)
    return await llm.structured(Policy, text, model="local:smollm2", temperature=0.0, max_tokens=40)


@tether.workflow
async def read_bounded_policy(text: str) -> BoundedPolicy:
    llm.configure(attempts=FAST_RETRIES)
    return await llm.structured(BoundedPolicy, text, model="local:smollm2", temperature=0.0, max_tokens=40)


@tether.workflow
async def tell_story(max_tokens: int) -> str:
    llm.configure(attempts=FAST_RETRIES)
    reply = await llm.chat("Write a long story about a lighthouse keeper who finds a message in a bottle.",
                           model="local:smollm2", temperature=0.0, max_tokens=max_tokens)
    return reply.text
