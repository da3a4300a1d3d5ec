"""Workflows and steps used by the human-task tests (in-process and subprocess workers)."""

from __future__ import annotations

from pydantic import BaseModel, Field

import tether


class Approval(BaseModel):
    approved: bool
    amount: int = Field(ge=0)
    comment: str = ""


class Verdict(BaseModel):
    outcome: str
    by_default: bool = False


class Quote(BaseModel):
    supplier: str
    price: float


@tether.workflow
async def human_approval(question: str) -> Approval:
    """Ask once, wait forever, return the answer."""
    return await tether.ask_human(question, schema=Approval, assignee="finance",
                                  context={"invoice": "INV-1", "total": 12400})


@tether.workflow
async def human_expiring(seconds: float) -> str:
    """A short timeout that nobody meets: the run handles HumanTaskExpired."""
    try:
        await tether.ask_human("Anyone there?", schema=str, timeout=seconds)
    except tether.HumanTaskExpired as exc:
        return f"expired: {exc.task_id}"
    return "answered"


@tether.workflow
async def human_default(seconds: float) -> bool:
    """A timeout with a default: the run goes on without a person."""
    return await tether.confirm("Ship it?", timeout=seconds, on_timeout=False)


@tether.workflow
async def human_pair(n: int) -> list[bool]:
    """Two approvals open at once."""
    return await tether.gather(tether.confirm("Legal OK?", assignee="legal"),
                               tether.confirm("Finance OK?", assignee="finance"))


@tether.step(attempts=tether.RetryPolicy(max_attempts=2, initial_interval="100ms"),
             on_failure=tether.escalate(assignee="ops"))
def human_fetch_quote(supplier: str) -> Quote:
    raise ConnectionError(f"supplier {supplier} is unreachable")


@tether.workflow
async def human_escalating(supplier: str) -> Quote:
    return await human_fetch_quote(supplier)


@tether.step(attempts=1)
def human_flaky_total(marker: str) -> int:
    from pathlib import Path

    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError("ledger locked")
    return 42


@tether.workflow
async def human_try_except(marker: str) -> int:
    """The plain-function form of escalate, in try/except."""
    try:
        return await human_flaky_total(marker)
    except tether.StepFailed as exc:
        total: int = await tether.escalate(exc, result_type=int, inputs={"marker": marker},
                                           retry=lambda: human_flaky_total(marker))
        return total
