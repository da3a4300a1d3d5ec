"""Workflows and steps for the sovereignty tests: encryption, rotation, zones, claim checks."""

from __future__ import annotations

from pydantic import BaseModel

import tether


class Letter(BaseModel):
    to: str
    body: str


@tether.step
def sov_shout(text: str) -> str:
    return text.upper() + "!"


@tether.step(runs_on="vault")
def sov_vault_len(text: str) -> int:
    return len(text)


@tether.workflow
async def sov_echo(letter: Letter) -> str:
    return await sov_shout(f"{letter.to}: {letter.body}")


@tether.workflow
async def sov_two_phase(text: str) -> str:
    first = await sov_shout(text)
    await tether.sleep("1.5s")
    return await sov_shout(first)


@tether.workflow
async def sov_zoned(text: str) -> int:
    return await sov_vault_len(text)


@tether.workflow
async def sov_big(size: int) -> int:
    doc = await sov_make_doc(size)
    return await sov_vault_len(doc)


@tether.step
def sov_make_doc(size: int) -> str:
    return "x" * size


@tether.step(runs_on="other")
def sov_other_len(text: str) -> int:
    return len(text) * 100
