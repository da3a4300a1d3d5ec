"""The no-op workload through tether (see raw_workloads.py for the same in plain temporalio)."""

from __future__ import annotations

import tether


@tether.step(attempts=3, timeout="30s")
async def bench_noop(i: int) -> int:
    return i


@tether.workflow
async def bench_tether(steps: int) -> int:
    total = 0
    for i in range(steps):
        total += await bench_noop(i)
    return total
