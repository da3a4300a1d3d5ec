"""`@tether.step(local=True)`: short steps run as Temporal local activities, on the real dev server."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType

import tether
from tests.apps import local_steps as app
from tether.testing import eventually


async def _event_types(client: tether.Client, run_id: str) -> list[int]:
    handle = client.temporal.get_workflow_handle(run_id)
    return [e.event_type async for e in handle.fetch_history_events()]


async def test_a_local_step_runs_once_and_is_not_run_again_on_replay(tether_client: tether.Client) -> None:
    app.calls.clear()
    async with tether.Worker(tether_client, workflows=[app.priced], steps=[app.add_vat]):
        run = await tether_client.start(app.priced, 100.0)
        # its result is in the history (a marker, no activity task) before the run's timer fires
        await eventually(lambda: _has_marker(tether_client, run.id))
    assert app.calls["add_vat"] == 1
    # a new worker (an empty workflow cache) finishes the run by replaying its history from the start
    async with tether.Worker(tether_client, workflows=[app.priced], steps=[app.add_vat]):
        assert await run.result() == 120.0
    assert app.calls["add_vat"] == 1
    events = await _event_types(tether_client, run.id)
    assert EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED not in events


async def _has_marker(client: tether.Client, run_id: str) -> bool:
    return EventType.EVENT_TYPE_MARKER_RECORDED in await _event_types(client, run_id)


async def test_a_local_step_is_retried_by_its_policy(tether_client: tether.Client) -> None:
    app.calls.clear()
    async with tether.Worker(tether_client, workflows=[app.retried, app.exhausted],
                             steps=[app.flaky_rule, app.always_fails]):
        assert await tether_client.run(app.retried, "flaky") == 3
        assert await tether_client.run(app.exhausted, "fails") == "retries exhausted"
    assert app.calls["flaky"] == 3
    assert app.calls["fails"] == 2  # the step's own attempts, none added for lost workers


@pytest.mark.parametrize(("option", "value"), [("runs_on", "vault"),
                                               ("rate_limit", tether.RateLimit(per_second=5, key="local-test")),
                                               ("heartbeat", "5s")])
def test_a_local_step_refuses_what_only_queued_steps_can_do(option: str, value: object) -> None:
    with pytest.raises(tether.UsageError) as caught:
        tether.step(local=True, **{option: value})(lambda x: x)  # type: ignore[call-overload]
    message = str(caught.value)
    assert f"local=True cannot be combined with {option}=" in message and "\n" not in message
