"""Crash recovery and server restart: completed steps never run twice, runs always finish."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import tether
from tests.apps import basics
from tether.engine.devserver import DevServer, free_port
from tether.testing import eventually, run_worker_process

REPO = Path(__file__).resolve().parents[2]


async def _wait_for_lines(path: Path, n: int, timeout: float = 60) -> None:
    def reached() -> None:
        assert path.exists() and len(path.read_text().splitlines()) >= n, f"{path} never reached {n} lines"

    await eventually(reached, timeout=timeout)


async def _wait_for_attempts(run: tether.Run[Any], step_index: int, attempts: int, timeout: float = 60) -> None:
    async def retried() -> None:
        steps = (await run.describe()).steps
        assert len(steps) > step_index and steps[step_index].attempts >= attempts, "step never retried"

    await eventually(retried, timeout=timeout)


def _journal_steps(journal: Path) -> list[tuple[int, int]]:
    rows = [line.split() for line in journal.read_text().splitlines()]
    return [(int(r[1]), int(r[3])) for r in rows]


async def test_worker_killed_after_step_4_resumes_without_repeating(tether_client: tether.Client,
                                                                     tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    conn = tether_client.connection
    first = run_worker_process("tests.apps.basics", address=conn.address, task_queue=conn.task_queue)
    second = None
    try:
        run = await tether_client.start(basics.ten_steps, str(journal))
        await _wait_for_lines(journal, 4)
        await _wait_for_attempts(run, 4, 2)  # step 5 is failing: the gate is closed
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        (tmp_path / "journal.gate").touch()
        second = run_worker_process("tests.apps.basics", address=conn.address, task_queue=conn.task_queue)
        assert await asyncio.wait_for(run.result(), 90) == sum(range(1, 11))
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    steps = _journal_steps(journal)
    assert [s for s, _ in steps] == list(range(1, 11)), "every step's side effect exactly once, in order"
    pids = [pid for _, pid in steps]
    assert set(pids[:4]) == {first.pid} and set(pids[4:]) == {second.pid}


async def test_server_killed_mid_run_and_restarted_run_completes(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    port = free_port()
    server = DevServer(tmp_path / "state", port=port, ui_port=0).start()
    assert server.db_path is not None and server.db_path.exists()
    try:
        client = await tether.Client.connect(server.address, task_queue="restart")
        async with tether.Worker(client, workflows=[basics.ten_steps], steps=[basics.record]):
            run = await client.start(basics.ten_steps, str(journal))
            await _wait_for_lines(journal, 4)
            server.kill()
            server = DevServer(tmp_path / "state", port=port, ui_port=0).start()
            (tmp_path / "journal.gate").touch()
            result = await asyncio.wait_for(client.get(run.id).result(), 120)
        assert result == sum(range(1, 11))
        assert [s for s, _ in _journal_steps(journal)] == list(range(1, 11))
    finally:
        server.stop()
