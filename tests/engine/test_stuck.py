"""Runs that cannot move are listed as stuck, with the reason and what to do; terminate ends them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import tether
from tests.apps import basics, liveness
from tether.engine.stuck import explain

NONDETERMINISM = 4  # WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR


async def _until_stuck(client: tether.Client, run_id: str, timeout: float = 30) -> tether.RunSummary:
    deadline = time.monotonic() + timeout
    while True:
        found = {r.id: r for r in await client.list_runs(task_queue=client.connection.task_queue)}
        if run_id in found and found[run_id].status == "stuck":
            return found[run_id]
        assert time.monotonic() < deadline, f"never listed as stuck: {found.get(run_id)}"
        await asyncio.sleep(0.2)


def _cli(client: tether.Client, *args: str) -> subprocess.CompletedProcess[str]:
    conn = client.connection
    return subprocess.run([sys.executable, "-m", "tether", *args, "--address", conn.address,
                           "--task-queue", conn.task_queue], capture_output=True, text=True, timeout=60)


async def test_a_run_whose_workflow_no_worker_knows_is_stuck_and_terminate_ends_it(
        tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client, workflows=[basics.order_total], steps=[basics.price]):
        run = await tether_client.start(liveness.held, "/nonexistent/journal")
        row = await _until_stuck(tether_client, run.id)
        assert row.stuck == (f"workflow 'held' is not registered on the worker serving queue "
                             f"{tether_client.connection.task_queue!r}: start a worker for the app that defines it")
        detail = await run.describe()
        assert detail.status == "running" and detail.stuck == row.stuck
        listed = _cli(tether_client, "runs", "--status", "stuck")
        assert run.id in listed.stdout and "stuck" in listed.stdout and "not registered" in listed.stdout
        ended = _cli(tether_client, "terminate", run.id, "--reason", "deployed without this workflow")
        assert ended.returncode == 0, ended.stderr
        assert ended.stdout.strip() == f"terminated {run.id}"
    assert (await run.describe()).status == "terminated"
    assert not [r for r in await tether_client.list_runs(status="stuck",
                                                         task_queue=tether_client.connection.task_queue)]


async def test_a_run_no_worker_takes_is_stuck_after_a_while(tether_client: tether.Client) -> None:
    run = await tether_client.start(basics.sleepy, 0.1)  # no worker serves this test's queue
    row = await _until_stuck(tether_client, run.id, timeout=30)
    assert row.stuck is not None and row.stuck.startswith("no worker has taken it for ")
    assert f"is a worker serving queue {tether_client.connection.task_queue!r} running?" in row.stuck
    await tether_client.terminate(run.id, "test over")


def test_terminating_an_unknown_run_is_one_line(tether_client: tether.Client) -> None:
    proc = _cli(tether_client, "terminate", "no-such-run")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "no-such-run" in proc.stderr and "Traceback" not in proc.stderr


def test_incompatible_code_is_explained_with_the_step_and_the_fix() -> None:
    message = ("[TMPRL1100] Nondeterminism error: Activity type of scheduled event 'check_vat' does not match "
               "activity type of activity command 'check_vat_v2'")
    text = explain(message, cause=NONDETERMINISM, workflow="invoice", queue="tether")
    assert text.startswith("its code changed incompatibly at step 'check_vat': wrap the change in tether.patched")
    other = explain("ZeroDivisionError: division by zero\n  File ...", cause=0, workflow="invoice", queue="q")
    assert other == "its workflow code fails: ZeroDivisionError: division by zero"


async def test_answering_a_task_of_a_stuck_run_says_why_and_leaves_it_open(tether_client: tether.Client) -> None:
    from tests.apps import human_flows

    async with tether.Worker(tether_client, workflows=[human_flows.human_approval], steps=[]):
        run = await tether_client.start(human_flows.human_approval, "Pay 90 EUR?")
        task = await tether_client.tasks.wait(run.id)
    # redeployed without that workflow: the answer cannot be applied, and says so at once
    async with tether.Worker(tether_client, workflows=[basics.order_total], steps=[basics.price]):
        started = time.monotonic()
        try:
            await tether_client.tasks.answer(task.id, {"approved": True, "amount": 90}, by="test", timeout=30)
        except tether.RunStuck as exc:
            stuck = exc
        else:
            raise AssertionError("the answer was taken by a worker that cannot run the workflow")
        assert time.monotonic() - started < 25, "said at once, not after the 60 s update timeout"
    assert stuck.run_id == run.id
    assert "is not registered on the worker serving queue" in stuck.reason
    assert str(stuck).startswith(f"task {task.id} cannot be answered now: run {run.id} is stuck: workflow")
    assert (await tether_client.tasks.get(task.id)).status == "open"
    await tether_client.terminate(run.id, "test over")
