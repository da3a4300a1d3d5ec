"""`tether worker --processes N`: N worker processes serve one queue and stop together."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

import tether
from tests.apps import basics
from tether import settings
from tether.testing import eventually


async def _pollers(client: tether.Client) -> set[str]:
    """Identities (pid@host) of the processes polling the main queue's workflow tasks."""
    resp = await client.temporal.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.connection.namespace, task_queue=TaskQueue(name=client.connection.task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
    return {p.identity for p in resp.pollers}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_two_processes_poll_the_queue_run_work_and_stop_on_sigterm(tether_client: tether.Client) -> None:
    conn = tether_client.connection
    cmd = [sys.executable, "-m", "tether", "worker", "tests.apps.basics", "--processes", "2", "--address",
           conn.address, "--task-queue", conn.task_queue, "--allow-plaintext", "--grace", "5s"]
    proc = subprocess.Popen(cmd, env=settings.child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        async def two_pollers() -> None:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "exited"
            identities = await _pollers(tether_client)
            assert len(identities) == 2 and str(proc.pid) not in {i.split("@")[0] for i in identities}

        await eventually(two_pollers, timeout=60)
        children = [int(i.split("@")[0]) for i in await _pollers(tether_client)]
        orders = [basics.Order(id=f"o{i}", amount=10) for i in range(8)]
        results = await asyncio.gather(*(tether_client.run(basics.order_total, o) for o in orders))
        assert [r.id for r in results] == [o.id for o in orders]

        proc.send_signal(signal.SIGTERM)  # forwarded to both; each stops gracefully
        assert await asyncio.to_thread(proc.wait, 30) == 0
        assert not any(_alive(pid) for pid in children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_processes_must_be_positive() -> None:
    r = subprocess.run([sys.executable, "-m", "tether", "worker", "tests.apps.basics", "--processes", "0",
                        "--allow-plaintext"], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "--processes 0: give at least 1" in r.stderr
