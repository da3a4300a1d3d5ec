"""Failure designed in: a killed worker costs seconds, a stopping worker keeps what it finished,
a poison step fails with its reason, keys stay stable across attempts, workers wait for the server."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import tether
from tests.apps import liveness
from tether.engine.devserver import DevServer, free_port
from tether.testing import eventually, run_worker_process

APP = "tests.apps.liveness"


def _lines(journal: Path, event: str | None = None) -> list[list[str]]:
    if not journal.exists():
        return []
    rows = [line.split() for line in journal.read_text().splitlines() if line.strip()]
    return [r for r in rows if event is None or r[0] == event]


def _worker(client: tether.Client, *, queues: list[str] | None = None,
            env: dict[str, str] | None = None, grace: str | None = None) -> subprocess.Popen[bytes]:
    conn = client.connection
    if grace is None:
        return run_worker_process(APP, address=conn.address, task_queue=conn.task_queue, queues=queues,
                                  env={**os.environ, **(env or {})})
    cmd = [sys.executable, "-m", "tether", "worker", APP, "--address", conn.address,
           "--task-queue", conn.task_queue, "--allow-plaintext", "--grace", grace]
    return subprocess.Popen(cmd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _stop(*procs: subprocess.Popen[Any] | None) -> None:
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()


async def _wait_polling(client: tether.Client, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the worker process serves the workflow queue (it printed its banner)."""
    from tether.engine.session import has_workflow_poller

    async def polling() -> None:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else "worker exited"
        assert await has_workflow_poller(client, client.connection.task_queue)

    await eventually(polling, timeout=30)


@pytest.mark.parametrize("flow", [liveness.held, liveness.held_async], ids=["sync", "async"])
async def test_a_killed_workers_step_is_retried_within_seconds(tether_client: tether.Client, tmp_path: Path,
                                                               flow: tether.Workflow[[str], str]) -> None:
    journal = tmp_path / "journal"
    first = _worker(tether_client)
    second = None
    try:
        run = await tether_client.start(flow, str(journal))
        await eventually(lambda: len(_lines(journal, "start")) == 1)
        second = _worker(tether_client)
        await _wait_polling(tether_client, second)
        os.kill(first.pid, signal.SIGKILL)
        killed_at = time.monotonic()

        async def shown_lost() -> None:  # honest status: not "running" for a dead attempt
            steps = (await run.describe()).steps
            assert steps
            step = steps[0]
            assert step.lost is not None and "worker lost at" in step.lost, step

        await eventually(shown_lost, timeout=20)
        await eventually(lambda: len(_lines(journal, "start")) == 2, timeout=20)
        recovered = time.monotonic() - killed_at
        assert recovered < 20, f"the lost attempt was retried {recovered:.1f}s after the kill"
        retry = _lines(journal, "start")[1]
        assert retry[1] == "2" and int(retry[2]) == second.pid
        (tmp_path / "journal.gate").touch()
        assert await asyncio.wait_for(run.result(), 30) == "held"
    finally:
        _stop(first, second)


async def test_sigterm_lets_a_step_in_flight_finish_and_keeps_its_result(tether_client: tether.Client,
                                                                         tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    first = _worker(tether_client)
    second = None
    try:
        run = await tether_client.start(liveness.slow_then_after, str(journal))
        await eventually(lambda: len(_lines(journal, "start")) == 1)
        first.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(first.communicate, timeout=30)
        text = output.decode()
        assert "stopping: taking no new work; 1 step attempt(s) in flight have 30s to finish" in text
        assert len(_lines(journal, "done")) == 1, "the step finished during the grace period"
        second = _worker(tether_client)
        assert await asyncio.wait_for(run.result(), 30) == "finished+after"
    finally:
        _stop(first, second)
    assert len(_lines(journal, "start")) == 1, "a step that finished during shutdown never runs again"
    assert [r[2] for r in _lines(journal, "after")] == [str(second.pid)]


async def test_a_step_still_running_after_the_grace_is_handed_back_at_once(tether_client: tether.Client,
                                                                           tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    first = _worker(tether_client, grace="1s")
    second = None
    try:
        run = await tether_client.start(liveness.long_step, str(journal))
        await eventually(lambda: len(_lines(journal, "start")) == 1)
        second = _worker(tether_client)
        await _wait_polling(tether_client, second)
        first.send_signal(signal.SIGTERM)
        await asyncio.to_thread(first.communicate, timeout=30)
        stopped_at = time.monotonic()
        await eventually(lambda: len(_lines(journal, "start")) == 2, timeout=20)
        handed_back = time.monotonic() - stopped_at
        assert handed_back < 6, f"retried {handed_back:.1f}s after the worker stopped (not handed back)"
        await run.cancel()
    finally:
        _stop(first, second)


async def test_a_step_that_keeps_killing_its_worker_fails_with_that_reason(tether_client: tether.Client,
                                                                         tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    env = {"TETHER_HEARTBEAT_TIMEOUT": "2s"}
    workers: list[subprocess.Popen[bytes]] = []
    run = await tether_client.start(liveness.poisoned, str(journal))
    result: asyncio.Task[str] = asyncio.ensure_future(run.result())
    try:
        while not result.done():  # a supervisor: restart the worker whenever it dies
            if not workers or workers[-1].poll() is not None:
                workers.append(_worker(tether_client, env=env))
            await asyncio.wait({result}, timeout=0.2)
            assert len(workers) < 10, "the poison step was retried without end"
        with pytest.raises(tether.RunFailed) as failed:
            result.result()
    finally:
        _stop(*workers)
    assert "lost its worker on 3 attempts" in str(failed.value)
    assert len(_lines(journal, "crash")) == 3
    step = (await run.describe()).steps[0]
    assert step.status == "failed" and "lost its worker on 3 attempts" in (step.error or "")


async def test_idempotency_key_is_stable_across_attempts_and_distinct_between_calls_and_runs(
        tether_client: tether.Client, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    async with tether.Worker(tether_client, workflows=[liveness.keyed_twice], steps=[liveness.keyed]):
        first = await tether_client.run(liveness.keyed_twice, str(journal))
        second = await tether_client.run(liveness.keyed_twice, str(tmp_path / "other"))
    one, two = _lines(journal, "key1"), _lines(journal, "key2")
    assert [r[1] for r in one] == ["1", "2"] and [r[1] for r in two] == ["1", "2"]
    assert one[0][3] == one[1][3] == first[0], "the same key on every attempt of a call"
    assert two[0][3] == two[1][3] == first[1]
    assert first[0] != first[1], "two calls of the step in one run have different keys"
    assert set(first).isdisjoint(second), "another run has other keys"
    assert all(k.startswith("tether-") and len(k) == 39 for k in first)
    outside = {tether.idempotency_key(), tether.idempotency_key()}
    assert len(outside) == 2, "outside a step attempt each call is a fresh key"


async def test_show_says_a_zone_step_waits_within_seconds_after_its_worker_died(tether_client: tether.Client,
                                                                              tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    annex = _worker(tether_client, queues=["annex"])
    try:
        async with tether.Worker(tether_client, workflows=[liveness.annexed], steps=[]):
            from tether._runtime import zone_queue
            from tether.engine.client import _has_step_worker

            queue = zone_queue(tether_client.connection.task_queue, "annex")

            async def polled() -> None:
                assert await _has_step_worker(tether_client, queue)

            await eventually(polled)
            os.kill(annex.pid, signal.SIGKILL)
            annex.wait()
            run = await tether_client.start(liveness.annexed, str(journal))
            started = time.monotonic()

            async def waiting() -> None:
                steps = (await run.describe()).steps
                assert steps
                step = steps[0]
                assert step.status == "waiting" and step.waiting_for is not None, step
                assert step.waiting_for.startswith("a worker in zone annex: none has taken it for")

            await eventually(waiting, timeout=15)
            assert time.monotonic() - started < 10
            await run.cancel()
    finally:
        _stop(annex)


async def test_a_worker_started_before_the_server_waits_and_then_serves(tmp_path: Path) -> None:
    port = free_port()
    address = f"127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "tether", "worker", APP, "--address", address, "--task-queue", "early",
           "--allow-plaintext"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = None
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)
        assert first.startswith(f"waiting for the Temporal server at {address} (connection refused); next try in")
        assert proc.poll() is None
        server = DevServer(tmp_path / "state", port=port, ui_port=0).start()
        client = await tether.Client.connect(address, task_queue="early")
        assert await asyncio.wait_for(client.run(liveness.keyed_twice, str(tmp_path / "j")), 60)
    finally:
        _stop(proc)
        if server is not None:
            server.stop()


async def test_a_retried_failure_is_one_log_line_without_traceback(tether_client: tether.Client,
                                                                 tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    proc = _worker(tether_client)
    try:
        assert await asyncio.wait_for(tether_client.run(liveness.keyed_twice, str(journal)), 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = await asyncio.to_thread(proc.communicate, timeout=30)
    text = output.decode()
    lines = [line for line in text.splitlines() if "step 'keyed' attempt 1 failed" in line]
    assert len(lines) == 2, text
    assert "RuntimeError: transient failure; retry 2 in 0.1s" in lines[0]
    assert "Traceback" not in text and '"exception"' not in text, text
    assert "\x1b[" not in text, "no colour codes in a log that is not a terminal"


def test_an_outage_is_one_whole_line_from_the_cli() -> None:
    address = f"127.0.0.1:{free_port()}"
    proc = subprocess.run([sys.executable, "-m", "tether", "runs", "--address", address],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: cannot reach the Temporal server at {address} (connection refused); ")
    assert "Os {" not in lines[0] and "Traceback" not in proc.stderr


def test_lost_attempts_are_counted_from_the_markers_attempts_leave() -> None:
    from tether.engine.liveness import MARKER, lost_so_far

    assert lost_so_far(None, 2) == 0, "an attempt that never ran tether's code is not counted"
    ran = {MARKER: 1, "lost": 0, "beat": 100.0, "deadline": 400.0, "timeout": 10.0}
    assert lost_so_far(ran, 2) == 1, "it ran, went silent and never said it ended: lost"
    assert lost_so_far({**ran, "ended": True}, 2) == 0, "it ended (returned, raised or was handed back)"
    assert lost_so_far({**ran, "beat": 395.0}, 2) == 0, "it beat until its deadline: a timeout, not a loss"
    assert lost_so_far({**ran, MARKER: 2, "lost": 2}, 3) == 3


async def test_the_sdk_cores_own_lines_are_log_lines_too(tmp_path: Path) -> None:
    """Core warnings (here: polls failing while the server is gone) come out as JSON log lines."""
    import json

    port = free_port()
    server = DevServer(tmp_path / "state", port=port, ui_port=0).start()
    cmd = [sys.executable, "-m", "tether", "worker", APP, "--address", f"127.0.0.1:{port}", "--task-queue",
           "core-logs", "--allow-plaintext"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        client = await tether.Client.connect(f"127.0.0.1:{port}", task_queue="core-logs")
        await _wait_polling(client, proc)
        server.kill()
        await asyncio.sleep(8)  # the worker's polls fail and the core says so
    finally:
        proc.send_signal(signal.SIGINT)
        proc.send_signal(signal.SIGINT)
        output, _ = await asyncio.to_thread(proc.communicate, timeout=60)
        server.stop()
    text = output.decode()
    core = [json.loads(line) for line in text.splitlines()
            if line.startswith("{") and '"temporalio.core' in line]
    assert core, text
    assert all(c["level"] in ("warning", "error") for c in core)
    assert "\x1b[" not in text
