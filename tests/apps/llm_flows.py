"""Workflows and scripted models used by the LLM tests (run by in-process and subprocess workers)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from pydantic import BaseModel

import tether
from tether import llm
from tether.testing import ScriptedModel

FAST_RETRIES = tether.RetryPolicy(max_attempts=4, initial_interval="100ms", max_interval="200ms")


class Ask(BaseModel):
    model: str
    prompt: str
    fallbacks: list[str] = []
    repairs: int = 2
    max_tokens: int | None = None


class InvoiceFields(BaseModel):
    supplier: str
    total: float
    currency: str


class Extracted(BaseModel):
    fields: InvoiceFields
    usage: llm.RunUsage


class Chatted(BaseModel):
    text: str
    usage: llm.RunUsage


@tether.workflow
async def llm_extract(ask: Ask) -> Extracted:
    llm.configure(attempts=FAST_RETRIES)
    fields = await llm.structured(InvoiceFields, ask.prompt, model=ask.model, fallbacks=ask.fallbacks,
                                  repairs=ask.repairs, temperature=0.0, max_tokens=ask.max_tokens)
    return Extracted(fields=fields, usage=llm.usage())


@tether.workflow
async def llm_chat_flow(ask: Ask) -> Chatted:
    llm.configure(attempts=FAST_RETRIES)
    reply = await llm.chat(ask.prompt, model=ask.model, fallbacks=ask.fallbacks,
                           max_tokens=ask.max_tokens, temperature=0.0)
    return Chatted(text=reply.text, usage=llm.usage())


@tether.workflow
async def llm_default_model(prompt: str) -> str:
    llm.configure("scripted:llm-echo")
    return (await llm.chat(prompt)).text


# ---- scripted models -----------------------------------------------------------------

BROKEN = ScriptedModel("llm-broken", lambda call: '{"supplier": "ACME GmbH", "total": ')
"""Always answers malformed JSON."""

GOOD = ScriptedModel("llm-good", lambda call: InvoiceFields(supplier="ACME GmbH", total=339.15,
                                                              currency="EUR"))
"""Always answers a valid InvoiceFields."""

ECHO = ScriptedModel("llm-echo", lambda call: f"echo: {call.messages[-1].content}")


async def _slow_reply(call: llm.ModelCall) -> str:
    """The first attempt (no marker yet) hangs as if the model were slow; later ones answer."""
    marker = Path(call.messages[-1].content)
    if not marker.exists():
        written = marker.with_name(marker.name + ".part")  # whole when it appears: the test reads it at once
        written.write_text(str(os.getpid()))
        written.rename(marker)
        await asyncio.sleep(300)
    return f"answered by pid {os.getpid()}"


SLOW = ScriptedModel("llm-slow", _slow_reply)


@tether.workflow
async def llm_slow_chat(marker: str) -> str:
    llm.configure(heartbeat="2s", attempts=FAST_RETRIES)
    return (await llm.chat(marker, model=SLOW.model)).text
