"""The limits benchmark's app: one model call per run, its model limited to 20 requests/s."""

from __future__ import annotations

import tether
from tether import llm

LIMIT = 20.0
llm.rate_limit("openai-compatible:bench-limited@*", requests_per_second=LIMIT)


@tether.workflow
async def one_call(model: str) -> str:
    """One model call (the model string carries the loopback server's URL)."""
    return (await llm.chat("Say OK.", model=model)).text
