"""Workflows served over MCP by `tether mcp serve` in the tests."""

from __future__ import annotations

from pydantic import BaseModel

import tether


class Greeting(BaseModel):
    name: str
    times: int = 1


class Greeted(BaseModel):
    text: str


@tether.step
def serve_shout(name: str, times: int) -> str:
    return " ".join([f"HELLO {name.upper()}"] * times)


@tether.workflow
async def serve_greet(greeting: Greeting) -> Greeted:
    """Greet someone loudly.

    More text that is not part of the tool's description.
    """
    return Greeted(text=await serve_shout(greeting.name, greeting.times))


@tether.workflow
async def serve_approve(amount: float) -> str:
    """Pay an amount once finance approves."""
    ok = await tether.confirm(f"Pay {amount:.2f} EUR?", assignee="finance")
    return f"paid {amount:.2f}" if ok else "not paid"
