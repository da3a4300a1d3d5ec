"""Versioned deploys on the real dev server: a pinned run stays on the build it started on while
new runs go to the newly promoted build."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import tether
from tests.apps import lifecycle
from tether.engine.deployments import DeploymentNotFound, run_build
from tether.testing import eventually


async def test_a_pinned_run_finishes_on_its_build_while_new_runs_use_the_new_one(
        tether_client: tether.Client) -> None:
    deployments = tether_client.deployments
    with pytest.raises(DeploymentNotFound, match="TETHER_BUILD_ID"):
        await deployments.describe()

    async def promoted(build: str) -> None:  # possible once the build's workers have polled
        try:
            await deployments.promote(build)
        except (DeploymentNotFound, tether.UsageError) as exc:
            raise AssertionError(str(exc)) from exc

    async with tether.Worker(tether_client, build_id="b1"):
        await eventually(lambda: promoted("b1"), timeout=30)
        old = await tether_client.start(lifecycle.pinned_settlement, 3.0)

        async def on(run: tether.Run[Any], build: str) -> None:
            assert await run_build(tether_client, run.id) == build

        await eventually(lambda: on(old, "b1"))
        async with tether.Worker(tether_client, build_id="b2"):
            await eventually(lambda: promoted("b2"), timeout=30)
            new = await tether_client.start(lifecycle.pinned_settlement, 0.0)
            assert await new.result(timeout=30) == "settled after 0s"
            assert await old.result(timeout=30) == "settled after 3s"
            await on(new, "b2")
            await on(old, "b1")  # the deploy did not move the run in flight
            info = await deployments.describe()
    assert info.current == "b2"
    status = {b.build_id: b.status for b in info.builds}
    assert status["b2"] == "current" and status["b1"] in ("draining", "drained")  # the engine re-checks drainage lazily
    shown = subprocess.run([sys.executable, "-m", "tether", "deployments", "show", "--address",
                            tether_client.connection.address, "--task-queue", tether_client.connection.task_queue],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert f"deployment {tether_client.connection.task_queue}: current build b2" in shown.stdout
    assert "  b1  draining" in shown.stdout or "  b1  drained" in shown.stdout
    again = subprocess.run([sys.executable, "-m", "tether", "deployments", "promote", "b3", "--address",
                            tether_client.connection.address, "--task-queue", tether_client.connection.task_queue],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "cannot make build 'b3' current" in again.stderr, again.stderr
    assert "Traceback" not in again.stderr


def test_a_blank_or_unknown_versioning_is_refused() -> None:
    with pytest.raises(tether.UsageError, match="versioning='sometimes'"):
        tether.workflow(versioning="sometimes")(lifecycle.invoice_batch.fn)  # type: ignore[call-overload]


async def test_tether_worker_build_id_serves_runs_once_promoted(tether_client: tether.Client) -> None:
    from tether import settings
    from tether.testing import run_worker_process

    env = {**settings.child_env(), "TETHER_BUILD_ID": "cli-b1"}  # what `tether worker --build-id cli-b1` sets
    proc = run_worker_process("tests.apps.lifecycle", address=tether_client.connection.address,
                              task_queue=tether_client.connection.task_queue, env=env)
    try:
        async def promoted() -> None:
            try:
                await tether_client.deployments.promote("cli-b1")
            except (DeploymentNotFound, tether.UsageError) as exc:
                raise AssertionError(str(exc)) from exc

        await eventually(promoted, timeout=60)
        run = await tether_client.start(lifecycle.invoice_batch, lifecycle.Batch(day="fri"))
        assert await run.result(timeout=30) == 3
        assert await run_build(tether_client, run.id) == "cli-b1"
    finally:
        proc.terminate()
        output = proc.communicate(timeout=60)[0].decode()
    assert "build cli-b1 of deployment " + tether_client.connection.task_queue in output
