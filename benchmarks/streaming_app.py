"""Workflows of the streaming benchmark: one model call (tether), and the same text published
through Temporal's `contrib.workflow_streams` (signals in 100 ms batches) for comparison."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.contrib.workflow_streams import WorkflowStream, WorkflowStreamClient

import tether
from tether import llm


@tether.workflow
async def bench_stream_write(model: str) -> str:
    """One model call; its text is the result."""
    return (await llm.chat("Write.", model=model)).text


@activity.defn(name="bench_stream_publish")
async def bench_stream_publish(pieces: list[str], every: float) -> int:
    """Publish `pieces`, `every` seconds apart, to the calling workflow's stream (100 ms batches)."""
    stream = WorkflowStreamClient.from_within_activity(batch_interval=timedelta(milliseconds=100))
    tokens = stream.topic("tokens", type=str)
    async with stream:
        for p in pieces:
            tokens.publish(p)
            await asyncio.sleep(every)
    return len(pieces)


@workflow.defn(name="bench_stream_raw")
class BenchStreamRaw:
    """The same text through `WorkflowStream` (publish: signals; the workflow keeps the log)."""

    @workflow.init
    def __init__(self, pieces: list[str], every: float, publish: bool) -> None:
        self.stream = WorkflowStream()

    @workflow.run
    async def run(self, pieces: list[str], every: float, publish: bool) -> int:
        if not publish:
            return 0
        done: int = await workflow.execute_activity(bench_stream_publish, args=[pieces, every],
                                                    start_to_close_timeout=timedelta(minutes=5))
        return done
