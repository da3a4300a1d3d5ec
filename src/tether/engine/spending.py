"""What a finished child run spent, read from its memo for its parent's budget (a built-in step)."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from tether.budget import MEMO_USAGE
from tether.step import step

SPENT_STEP = "tether.run_spent"


@step(name=SPENT_STEP, attempts=5, timeout="30s")
async def run_spent(run_id: str) -> dict[str, Any] | None:
    """The usage run `run_id` recorded when it ended (None if it recorded none)."""
    described = await activity.client().get_workflow_handle(run_id).describe()
    memo = await described.memo()
    used = memo.get(MEMO_USAGE)
    return used if isinstance(used, dict) else None
