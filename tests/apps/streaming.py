"""Workflows whose steps stream: a model call and a step that reports progress (the live-events tests' app)."""

from __future__ import annotations

import asyncio

import tether
from tether import llm

llm.configure(heartbeat="10s")  # a killed worker's model step is retried within seconds


@tether.workflow
async def streaming_write(model: str) -> str:
    """Ask `model` for text; return it."""
    reply = await llm.chat("Write a short story.", model=model)
    return reply.text


@tether.step
async def streaming_pages(n: int) -> int:
    """Parse `n` pages, saying how far it got after each."""
    for i in range(n):
        await asyncio.sleep(0.15)
        tether.progress(f"parsed {i + 1} of {n} pages", done=i + 1, total=n)
    await asyncio.sleep(0.3)
    return n


@tether.workflow
async def streaming_read(n: int) -> int:
    """Read a document of `n` pages, then note it."""
    pages = await streaming_pages(n)
    tether.note(f"read {pages} pages")
    return pages


@tether.workflow
async def streaming_write_local(max_tokens: int) -> str:
    """Ask the local model for a story of at most `max_tokens` tokens; return it."""
    reply = await llm.chat("Tell a short story about a cat.", model="local:smollm2", max_tokens=max_tokens,
                           temperature=0.0)
    return reply.text
