"""Escalation against the real dev server: a failing step asks a person what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

import tether
from tests.apps import human_flows as flows
from tests.human.conftest import cancel, wait_for_task


async def test_failing_step_opens_a_task_with_the_error_and_inputs(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_escalating, "ACME")
        task = await wait_for_task(tether_client, f"{run.id}.1")
        assert (task.kind, task.step, task.assignee) == ("escalation", "human_fetch_quote", "ops")
        assert task.question == ("step 'human_fetch_quote' failed (retries exhausted): ConnectionError: "
                                 "supplier ACME is unreachable — retry it, supply its result, or fail the run?")
        assert task.context["inputs"] == {"supplier": "ACME"}
        assert "retries exhausted" in task.context["error"]
        assert task.context["error_type"] == "ConnectionError"
        options = {o["$ref"].rsplit("/", 1)[1] for o in task.answer_schema["oneOf"]}
        assert options == {"RetryStep", "UseValue_Quote_", "FailRun"}
        await cancel(run)


async def test_use_this_value_completes_the_run_with_it(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_escalating, "ACME")
        task = await wait_for_task(tether_client, f"{run.id}.1")
        await tether_client.tasks.answer(
            task.id, {"action": "use", "value": {"supplier": "ACME", "price": 9.5}}, by="ops-anna")
        assert await run.result() == flows.Quote(supplier="ACME", price=9.5)
        steps = (await run.describe()).steps
    assert [(s.kind, s.attempts, s.status) for s in steps] == [("step", 2, "failed"), ("human", 1, "answered")]
    assert steps[1].name.endswith("(answered by ops-anna)")
    assert steps[1].result == {"action": "use", "value": {"supplier": "ACME", "price": 9.5}}


async def test_a_supplied_value_is_validated_against_the_return_type(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_escalating, "ACME")
        task = await wait_for_task(tether_client, f"{run.id}.1")
        for answer, field in [({"action": "use", "value": {"supplier": "ACME"}}, "value.price"),
                              ({"action": "use", "value": {"supplier": "A", "price": "cheap"}}, "value.price"),
                              ({"value": 1}, "action"),
                              ({"action": "shrug"}, "action"),
                              ({"action": "fail"}, "reason")]:
            with pytest.raises(tether.InvalidAnswer) as info:
                await tether_client.tasks.answer(task.id, answer, by="ops")
            assert info.value.field == field, (answer, str(info.value))
        assert (await tether_client.tasks.get(task.id)).status == "open"
        await cancel(run)


async def test_retry_runs_the_step_once_more_then_asks_again(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_escalating, "ACME")
        first = await wait_for_task(tether_client, f"{run.id}.1")
        await tether_client.tasks.answer(first.id, {"action": "retry"}, by="ops")
        second = await wait_for_task(tether_client, f"{run.id}.2")
        assert second.context["escalation"] == 2
        await tether_client.tasks.answer(second.id, {"action": "fail", "reason": "supplier is gone"},
                                         by="ops-lead")
        with pytest.raises(tether.RunFailed) as info:
            await run.result()
        steps = (await run.describe()).steps
    assert "a person chose to stop the run: supplier is gone" in str(info.value)
    # the step's own 2 attempts, then exactly one more attempt for the retry
    assert [(s.kind, s.name if s.kind == "step" else s.id, s.attempts, s.status) for s in steps] == [
        ("step", "human_fetch_quote", 2, "failed"), ("human", first.id, 1, "answered"),
        ("step", "human_fetch_quote", 1, "failed"), ("human", second.id, 1, "answered")]


async def test_plain_escalate_in_try_except_retry_succeeds(tether_client: tether.Client, tmp_path: Path) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_try_except, str(tmp_path / "marker"))
        task = await wait_for_task(tether_client, f"{run.id}.1")
        assert task.context["inputs"] == {"marker": str(tmp_path / "marker")}
        assert "ledger locked" in task.context["error"]
        await tether_client.tasks.answer(task.id, {"action": "retry"}, by="ops")
        assert await run.result() == 42


def test_on_failure_takes_an_escalation() -> None:
    with pytest.raises(tether.UsageError, match=r"on_failure takes tether\.escalate"):
        tether.step(on_failure="ask someone")(lambda: None)  # type: ignore[call-overload]  # deliberately wrong
