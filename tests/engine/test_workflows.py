"""SDK core against the real dev server: typed I/O, gather, child runs, sleep, patched."""

from __future__ import annotations

from pathlib import Path

import pytest

import tether
from tests.apps import basics


async def test_typed_input_and_output(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        out = await tether_client.run(basics.order_total, {"id": "o1", "amount": 100})
    assert isinstance(out, basics.Outcome)
    assert out == basics.Outcome(id="o1", total=119.0, tags=["big"])


async def test_gather_runs_steps_in_parallel(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(basics.fan_out, 5)
        assert await run.result() == [0, 2, 4, 6, 8]
        detail = await run.describe()
    steps = [s for s in detail.steps if s.kind == "step"]
    assert [s.name for s in steps] == ["double"] * 5
    # all five were scheduled by one workflow task, before any of them completed
    first_end = min(s.ended_at for s in steps if s.ended_at)
    assert all(s.scheduled_at and s.scheduled_at <= first_end for s in steps)


async def test_child_workflows(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(basics.parent, 3)
        assert await run.result() == (0 + 2 + 4) + (0 + 2 + 4 + 6)
        detail = await run.describe()
    children = [s for s in detail.steps if s.kind == "child"]
    assert [c.name for c in children] == ["fan_out", "fan_out"]
    assert all(c.status == "completed" for c in children)


async def test_durable_sleep_is_a_timer(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(basics.sleepy, 0.5)
        assert await run.result() >= 0.5
        detail = await run.describe()
    assert [(s.kind, s.name, s.status) for s in detail.steps] == [("sleep", "sleep 0.5s", "completed")]


async def test_patched_takes_new_branch_for_new_runs(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        assert await tether_client.run(basics.patched_flow, 1) == 11


async def test_continue_as_new(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        assert await tether_client.run(basics.counter, 0) == 3


async def test_retries_then_success_counts_attempts(tether_client: tether.Client, tmp_path: Path) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(basics.retrying, str(tmp_path / "m"))
        assert await run.result() == "ok after 3"
        detail = await run.describe()
    (step,) = detail.steps
    assert (step.name, step.attempts, step.status) == ("flaky", 3, "completed")
    assert step.last_failure == "transient failure 2"


async def test_non_retryable_fails_fast_with_original_message(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(basics.strict_flow, "x")
        with pytest.raises(tether.RunFailed) as info:
            await run.result()
        detail = await run.describe()
    assert "ValueError: value 'x' is not acceptable" in str(info.value)
    assert info.value.error_type == "StepFailed"
    assert detail.steps[0].attempts == 1


async def test_invalid_input_starts_nothing(tether_client: tether.Client) -> None:
    with pytest.raises(tether.InvalidInput) as info:
        await tether_client.start(basics.order_total, {"id": "o1", "amount": "lots"})
    assert info.value.field == "amount"
    assert "'amount'" in str(info.value)
    assert await tether_client.list_runs(task_queue=tether_client.connection.task_queue) == []


async def test_unknown_workflow_lists_known_ones(tether_client: tether.Client) -> None:
    with pytest.raises(tether.UnknownWorkflow) as info:
        await tether_client.start("no_such_flow", None)
    assert "order_total" in str(info.value)


async def test_cancel(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(basics.sleepy, 60)
        await run.cancel()
        with pytest.raises(tether.RunCancelled):
            await run.result()


async def test_plain_temporalio_beside_tether(tether_client: tether.Client) -> None:
    app = tether.load_app("tests.apps.basics")
    assert basics.RawGreeting in app.temporal_workflows and basics.raw_shout in app.temporal_activities
    async with tether.Worker(tether_client, temporal_workflows=app.temporal_workflows,
                             temporal_activities=app.temporal_activities):
        raw = await tether_client.temporal.execute_workflow(
            "raw_greeting", "ada", id=f"raw-{tether.uuid4()}", task_queue=tether_client.connection.task_queue)
        assert raw == "HELLO ADA"
        assert await tether_client.run(basics.mixed, "ada") == "ADA:2"


async def test_wait_for_times_out_durably(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        assert await tether_client.run(basics.waits, 0.3) is False
