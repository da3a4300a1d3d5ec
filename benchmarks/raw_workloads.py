"""The no-op workload written directly with temporalio: the baseline. Imports nothing of
tether, so Temporal's sandbox re-imports only what a plain temporalio app would."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


@activity.defn(name="raw_noop")
async def raw_noop(i: int) -> int:
    return i


@workflow.defn(name="bench_raw")
class BenchRaw:
    @workflow.run
    async def run(self, steps: int) -> int:
        total = 0
        for i in range(steps):
            total += await workflow.execute_activity(
                raw_noop, i, start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        return total
