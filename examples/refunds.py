"""Refunds: a model reads the customer's message, a rule decides, a person approves the big ones.

The example the README's testing section tests (examples/test_refunds.py).

    tether run examples/refunds.py:handle_refund --input '{"order": "A-1", "amount": 40, "message": "Broken"}'
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

import tether
from tether import llm

MODEL = "mistral:mistral-small-latest"
"""The model that reads messages (tests give its calls to a scripted model)."""


class Refund(BaseModel):
    order: str
    amount: float
    message: str


class Reading(BaseModel):
    reason: Literal["damaged", "late", "other"]
    angry: bool


@tether.step
def pay_back(refund: Refund) -> str:
    """Pay the refund back (here: a deterministic reference)."""
    return f"refund-{refund.order}"


@tether.workflow
async def handle_refund(refund: Refund) -> str:
    """Refund at once when small and calm; otherwise ask support first."""
    reading = await llm.structured(Reading, refund.message, model=MODEL)
    if (refund.amount > 100 or reading.angry) and not await tether.confirm(
            f"Refund {refund.amount:g} EUR for order {refund.order} ({reading.reason})?", assignee="support"):
        return "declined"
    return await pay_back(refund)
