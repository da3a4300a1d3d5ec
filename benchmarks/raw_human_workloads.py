"""The human-task baseline written directly with temporalio: a workflow waiting on an update
with a validator. Imports nothing of tether, as a plain temporalio app would not."""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import workflow


class BenchApproval(BaseModel):
    approved: bool
    amount: int


@workflow.defn(name="bench_raw_ask")
class BenchRawAsk:
    def __init__(self) -> None:
        self.answer: BenchApproval | None = None

    @workflow.run
    async def run(self, n: int) -> int:
        await workflow.wait_condition(lambda: self.answer is not None, timeout=3600)
        assert self.answer is not None
        return self.answer.amount

    @workflow.update(name="answer")
    def give(self, answer: BenchApproval) -> BenchApproval:
        self.answer = answer
        return answer

    @give.validator
    def check(self, answer: BenchApproval) -> None:
        if self.answer is not None:
            raise ValueError("already answered")
