"""An app that declares its cloud model up front: without the key it does not even load."""

from __future__ import annotations

import tether
from tether import llm

MODEL = "mistral:mistral-small-latest"
llm.require(MODEL)


@tether.workflow
async def llm_needs_key(prompt: str) -> str:
    return (await llm.chat(prompt, model=MODEL)).text
