"""Workflows, steps and scripted models used by Studio's tests and its render benchmark."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

import tether
from tether import llm
from tether.testing import ScriptedModel

FAST = tether.RetryPolicy(max_attempts=3, initial_interval="50ms", max_interval="100ms")


class Address(BaseModel):
    city: str
    country: str = "FR"


class Claim(BaseModel):
    """A customer's claim, as a clerk would type it in."""

    customer: str = Field(description="As written on the contract")
    amount: float = Field(gt=0, description="Claimed amount in EUR")
    priority: Literal["low", "normal", "high"] = "normal"
    express: bool = False
    address: Address


class Triage(BaseModel):
    category: str
    risk: float


class Review(BaseModel):
    approved: bool
    payout: int = Field(ge=0, description="Amount to pay, in EUR")
    reason: Literal["covered", "partial cover", "fraud suspicion"]
    note: str = ""


class Outcome(BaseModel):
    customer: str
    category: str
    approved: bool
    payout: int


TRIAGE = ScriptedModel("studio-triage", lambda call: '{"category": "water damage", "risk": 0.82}')
"""Classifies every claim as a risky water damage."""
llm.set_price(TRIAGE.model, input=30.0, output=60.0)


@tether.step(attempts=FAST)
def studio_policy_lookup(customer: str) -> str:
    """Fails once per process for customers named 'Flaky', to show a retried step."""
    if customer.startswith("Flaky") and customer not in _seen:
        _seen.add(customer)
        raise ConnectionError("policy database timed out")
    return f"POL-{sum(map(ord, customer)) * 37 % 10000:04d}"


_seen: set[str] = set()


@tether.workflow
async def studio_claim(claim: Claim) -> Outcome:
    """Triage a claim with a model; a person decides the payout of risky ones."""
    policy = await studio_policy_lookup(claim.customer)
    triage = await llm.structured(
        Triage, f"Claim from {claim.customer} in {claim.address.city}: {claim.amount:.2f} EUR, policy {policy}. "
        "Classify the damage and rate the fraud risk from 0 to 1.", model=TRIAGE.model,
        system="You triage insurance claims.")
    if tether.decide("needs_review", triage.risk > 0.5, risk=triage.risk, limit=0.5):
        review = await tether.ask_human(
            f"Approve the {triage.category} claim of {claim.customer} ({claim.amount:.0f} EUR)?",
            schema=Review, assignee="claims",
            context={"policy": policy, "triage": triage.model_dump(), "claim": claim.model_dump()})
        tether.note("reviewed by a person", approved=review.approved, payout=review.payout)
        return Outcome(customer=claim.customer, category=triage.category, approved=review.approved,
                       payout=review.payout)
    return Outcome(customer=claim.customer, category=triage.category, approved=True, payout=int(claim.amount))


@tether.step
def studio_noop(i: int) -> int:
    return i


@tether.workflow
async def studio_many_steps(n: int) -> int:
    """n steps in a row (the run page benchmark)."""
    total = 0
    for i in range(n):
        total += await studio_noop(i)
    return total


@tether.workflow
async def studio_quick(n: int) -> int:
    """Returns at once (many runs for the runs page benchmark)."""
    return n
