"""ask_human / confirm against the real dev server: answers, validation, timeouts, parallel tasks."""

from __future__ import annotations

import asyncio

import pytest

import tether
from tests.apps import human_flows as flows
from tests.human.conftest import cancel, wait_for_task


async def test_answer_is_validated_delivered_and_recorded(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_approval, "Pay invoice INV-1?")
        task = await wait_for_task(tether_client, f"{run.id}.1")
        assert (task.question, task.assignee, task.kind) == ("Pay invoice INV-1?", "finance", "question")
        assert task.context == {"invoice": "INV-1", "total": 12400}
        assert task.answer_schema["required"] == ["approved", "amount"]
        done = await tether_client.tasks.answer(task.id, {"approved": True, "amount": 12400}, by="alice")
        assert await run.result() == flows.Approval(approved=True, amount=12400)
        record = await tether_client.tasks.get(task.id)
        (row,) = (await run.describe()).steps  # what `tether show` lists
    assert done.status == record.status == "answered"
    assert record.answered_by == "alice"
    assert record.answer == {"approved": True, "amount": 12400, "comment": ""}
    assert record.answered_at is not None
    assert record.opened_at <= record.answered_at == record.closed_at
    assert await tether_client.tasks.list(run_id=run.id) == []  # no longer open
    assert (row.kind, row.status, row.result) == ("human", "answered", record.answer)
    assert row.name == f"task {task.id}: Pay invoice INV-1? (answered by alice)"


@pytest.mark.parametrize(("answer", "field"), [
    ({"approved": "perhaps", "amount": 10}, "approved"),   # wrong type
    ({"approved": True}, "amount"),                        # missing field
    ({"approved": True, "amount": -5}, "amount"),          # constraint
    ("yes", ""),                                           # not an object at all
    ({"approved": True, "amount": 1, "comment": "x" * 70_000}, "answer"),  # too large
])
async def test_invalid_answer_names_the_field_and_leaves_the_task_open(
        tether_client: tether.Client, answer: object, field: str) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_approval, "Pay?")
        task = await wait_for_task(tether_client, f"{run.id}.1")
        with pytest.raises(tether.InvalidAnswer) as info:
            await tether_client.tasks.answer(task.id, answer, by="mallory")
        assert info.value.field == field
        if field:
            assert f"field {field!r}" in str(info.value)
        assert (await tether_client.tasks.get(task.id)).status == "open"
        assert (await run.describe()).status == "running"
        # the run still waits, and a valid answer still goes through
        await tether_client.tasks.answer(task.id, {"approved": False, "amount": 0}, by="alice")
        assert (await run.result()).approved is False


async def test_answering_twice_is_refused_with_who_answered(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_approval, "Pay?")
        task = await wait_for_task(tether_client, f"{run.id}.1")
        await tether_client.tasks.answer(task.id, {"approved": True, "amount": 1}, by="alice")
        await run.result()
        with pytest.raises(tether.TaskClosed) as info:
            await tether_client.tasks.answer(task.id, {"approved": False, "amount": 1}, by="bob")
    assert "already answered by alice" in str(info.value)


async def test_two_answers_racing_only_one_wins(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_approval, "Pay?")
        task = await wait_for_task(tether_client, f"{run.id}.1")
        results = await asyncio.gather(
            *(tether_client.tasks.answer(task.id, {"approved": True, "amount": i}, by=f"p{i}")
              for i in range(3)), return_exceptions=True)
        outcome = await run.result()
    winners = [r for r in results if isinstance(r, tether.HumanTask)]
    assert len(winners) == 1, results
    assert all(isinstance(r, tether.TaskClosed) for r in results if r not in winners)
    assert outcome.amount == winners[0].answer["amount"]


async def test_timeout_raises_human_task_expired_and_the_run_handles_it(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_expiring, 1.0)
        assert await run.result() == f"expired: {run.id}.1"
        record = await tether_client.tasks.get(f"{run.id}.1")
        steps = (await run.describe()).steps
        assert [(s.kind, s.status) for s in steps] == [("human", "expired")]  # the timer is not a "sleep"
        with pytest.raises(tether.TaskClosed) as info:
            await tether_client.tasks.answer(record.id, "too late", by="alice")
    assert record.status == "expired" and record.answered_at is None
    assert record.closed_at is not None and record.expires_at is not None
    assert "expired" in str(info.value)


async def test_timeout_with_a_default_returns_it(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_default, 0.5)
        assert await run.result() is False
        record = await tether_client.tasks.get(f"{run.id}.1")
    assert (record.kind, record.status, record.default_on_timeout) == ("confirm", "expired", True)
    assert record.answer_schema == {"type": "boolean"}


async def test_parallel_tasks_in_one_run(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_pair, 0)
        await wait_for_task(tether_client, f"{run.id}.2")
        listed = await tether_client.tasks.list(run_id=run.id)
        assert [(t.question, t.assignee) for t in listed] == [("Legal OK?", "legal"),
                                                               ("Finance OK?", "finance")]
        assert [t.id for t in await tether_client.tasks.list(assignee="legal")
                if t.run_id == run.id] == [f"{run.id}.1"]
        await tether_client.tasks.answer(f"{run.id}.2", False, by="cfo")
        live = await tether_client.temporal.get_workflow_handle(run.id).query(
            "tether.tasks", result_type=list[tether.HumanTask])  # the live view, from the worker
        assert [(t.id, t.status, t.answered_by) for t in live] == [
            (f"{run.id}.1", "open", None), (f"{run.id}.2", "answered", "cfo")]
        assert [t.id for t in await tether_client.tasks.list(run_id=run.id)] == [f"{run.id}.1"]
        await tether_client.tasks.answer(f"{run.id}.1", True, by="counsel")
        assert await run.result() == [True, False]


async def test_unknown_tasks_are_reported(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_approval, "Pay?")
        await wait_for_task(tether_client, f"{run.id}.1")
        with pytest.raises(tether.TaskNotFound):
            await tether_client.tasks.get(f"{run.id}.7")
        with pytest.raises(tether.TaskNotFound):
            await tether_client.tasks.answer("no-such-run.1", True, by="x")
        with pytest.raises(tether.UsageError, match="task ids look like"):
            await tether_client.tasks.get("not a task id")
        await cancel(run)


async def test_ask_human_outside_a_workflow_is_a_usage_error() -> None:
    with pytest.raises(tether.UsageError, match="only works inside a running workflow"):
        await tether.ask_human("Hello?")
