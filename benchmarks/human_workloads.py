"""The human-task workload through tether: one approval per run (see raw_human_workloads.py
for the same written directly with temporalio)."""

from __future__ import annotations

import tether
from benchmarks.raw_human_workloads import BenchApproval


@tether.workflow
async def bench_ask(n: int) -> int:
    answer = await tether.ask_human(f"approve #{n}?", schema=BenchApproval, timeout="1h")
    return answer.amount
