"""Zones with workers in separate processes: routing, wrong-zone workers, a missing zone worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import tether
from tests.apps import sov_basic as app
from tests.sovereignty.conftest import Connect
from tether.engine.devserver import DevServer
from tether.testing import run_worker_process

REPO = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    return env | {"TETHER_STATE_DIR": str(tmp_path / "state"), "TETHER_VAULT": str(tmp_path / "vault.db"),
                  "PYTHONPATH": str(REPO)}


async def _step(run: tether.Run[Any], timeout: float = 30) -> tether.engine.history.StepRecord:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = (await run.describe()).steps
        if steps and steps[0].status != "scheduled":
            return steps[0]
        await asyncio.sleep(0.2)
    raise AssertionError("the step never changed state")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


async def test_missing_zone_worker_is_reported_and_wrong_zone_never_runs_the_step(
        connect: Connect, tether_server: DevServer, queue: str, tmp_path: Path) -> None:
    client = await connect(None, queue=queue)
    env = _env(tmp_path)
    brain = run_worker_process("tests.apps.sov_basic", address=tether_server.address, task_queue=queue,
                               queues=["main"], env=env)
    wrong = run_worker_process("tests.apps.sov_basic", address=tether_server.address, task_queue=queue,
                               queues=["other"], env=env)
    vault = None
    try:
        run = await client.start(app.sov_zoned, "abc")
        step = await _step(run)
        assert (step.status, step.waiting_for) == ("waiting", "a worker in zone vault")
        shown = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "tether", "show", run.id,
                                        "--address", tether_server.address], env=env, cwd=tmp_path,
                                        capture_output=True, text=True, timeout=60)
        assert "waiting for a worker in zone vault" in shown.stdout, shown.stdout + shown.stderr
        await asyncio.sleep(2)  # the wrong-zone worker keeps polling its own queue: still not started
        assert (await run.describe()).steps[0].status == "waiting"
        vault = run_worker_process("tests.apps.sov_basic", address=tether_server.address, task_queue=queue,
                                   queues=["vault"], env=env)
        assert await asyncio.wait_for(run.result(), 60) == 3  # len("abc"), not the "other" zone's 300
        (done,) = (await run.describe()).steps
        # one attempt in all: no other worker ever took (and failed) the step
        assert (done.status, done.attempts, done.zone, done.waiting_for) == ("completed", 1, "vault", None)
    finally:
        for proc in (brain, wrong, vault):
            if proc is not None:
                _stop(proc)


def test_dev_runs_zones_in_separate_processes(tmp_path: Path) -> None:
    from tether.engine.devserver import free_port

    env = _env(tmp_path)
    state = tmp_path / "state"
    dev = subprocess.Popen([sys.executable, "-m", "tether", "dev", "tests.apps.sov_vault", "--separate-zones",
                            "--port", str(free_port()), "--ui-port", "0", "--state-dir", str(state)],
                           env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines: list[str] = []
        while not any("ready" in line for line in lines):
            line = dev.stdout.readline()  # type: ignore[union-attr]
            assert line, "".join(lines)
            lines.append(line)
        assert "zone workers: other, vault" in "".join(lines)
        assert (state / "keys.json").exists()  # dev created the payload key
        res = subprocess.run([sys.executable, "-m", "tether", "run", "tests.apps.sov_vault:sov_report",
                              "--input", '"c2"', "--state-dir", str(state)], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert "sov_lookup @vault" in res.stderr and '"last4": "4321"' in res.stdout
    finally:
        dev.send_signal(signal.SIGINT)
        out, _ = dev.communicate(timeout=30)
    assert "stopped" in out
    zone_workers = [line for line in out.splitlines() if line.startswith("worker on ")]
    assert len(zone_workers) == 2 and all("payload key k-" in w for w in zone_workers)
