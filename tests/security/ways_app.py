"""Workflows served over MCP in the security tests: an approval, and one that asks it through a child run."""

from __future__ import annotations

import tether


@tether.workflow
async def ways_approve(amount: float) -> str:
    """Pay an amount once finance approves."""
    ok = await tether.confirm(f"Pay {amount:.2f} EUR?", assignee="finance")
    return f"paid {amount:.2f}" if ok else "not paid"


@tether.workflow
async def ways_pay_via_child(amount: float) -> str:
    """Pay an amount; the approval is asked by a child run."""
    return await ways_approve(amount)
