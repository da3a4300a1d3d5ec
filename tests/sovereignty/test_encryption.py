"""Encrypted runs on the real dev server: what Temporal stores, rotation, wrong or missing keys."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import tether
from tests.apps import sov_basic as app
from tests.sovereignty.conftest import Connect
from tether.engine.codec import Key, new_key, write_key_file
from tether.engine.devserver import DevServer
from tether.engine.liveness import engine_attempts

REPO = Path(__file__).resolve().parents[2]
PLANTED = "123-45-6789"


async def _raw_history(client: tether.Client, run_id: str) -> bytes:
    events = [e async for e in client.temporal.get_workflow_handle(run_id).fetch_history_events()]
    return b"".join(e.SerializeToString() for e in events)


async def _key_ids(client: tether.Client, run_id: str, keys: list[Key]) -> set[str]:
    raw = await _raw_history(client, run_id)
    return {k.id for k in keys if k.id.encode() in raw}


async def _wait_until(check, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not reached in time")


async def test_server_sees_only_ciphertext_and_client_reads_it(connect: Connect, queue: str, k1: Key) -> None:
    client = await connect([k1], queue=queue)
    async with tether.Worker(client, workflows=[app.sov_echo], steps=[app.sov_shout]):
        run = await client.start(app.sov_echo, {"to": "ann", "body": f"ssn {PLANTED}"})
        assert await run.result() == f"ANN: SSN {PLANTED}!"
        detail = await run.describe()
    raw = await _raw_history(client, run.id)
    assert PLANTED.encode() not in raw and b"ANN" not in raw
    assert await _key_ids(client, run.id, [k1]) == {k1.id}
    assert detail.input == {"to": "ann", "body": f"ssn {PLANTED}"}
    assert detail.result == f"ANN: SSN {PLANTED}!"
    assert detail.steps[0].input == [f"ann: ssn {PLANTED}"]


async def test_runs_started_under_key_1_complete_after_key_2_becomes_primary(
        connect: Connect, queue: str, k1: Key, k2: Key) -> None:
    old = await connect([k1], queue=queue)
    async with tether.Worker(old, workflows=[app.sov_two_phase], steps=[app.sov_shout]):
        run = await old.start(app.sov_two_phase, "hi")
        other = await old.start(app.sov_two_phase, "ho")  # its input too is under key 1
        await _wait_until(lambda: _first_step_done(run))
    rotated = await connect([k2, k1], queue=queue)
    async with tether.Worker(rotated, workflows=[app.sov_two_phase], steps=[app.sov_shout]):
        assert await asyncio.wait_for(rotated.get(run.id).result(), 60) == "HI!!"
        assert await asyncio.wait_for(rotated.get(other.id).result(), 60) == "HO!!"
    assert await _key_ids(rotated, run.id, [k1, k2]) == {k1.id, k2.id}
    assert (await rotated.get(run.id).describe()).input == "hi"


async def _first_step_done(run: tether.Run[Any]) -> bool:
    steps = (await run.describe()).steps
    return bool(steps) and steps[0].status == "completed"


async def test_worker_without_the_key_leaves_the_run_waiting_then_it_completes(
        connect: Connect, queue: str, k1: Key, k2: Key) -> None:
    client = await connect([k1], queue=queue)
    run = await client.start(app.sov_echo, {"to": "bo", "body": "x"})
    stranger = await connect([k2], queue=queue)
    async with tether.Worker(stranger, workflows=[app.sov_echo], steps=[app.sov_shout]):
        await _wait_until(lambda: _stuck(run))
        detail = await run.describe()
    assert detail.status == "running"
    assert f"encrypted with key {k1.id!r}, which this process does not have" in (detail.workflow_task_error or "")
    keyed = await connect([k2, k1], queue=queue)
    async with tether.Worker(keyed, workflows=[app.sov_echo], steps=[app.sov_shout]):
        assert await asyncio.wait_for(keyed.get(run.id).result(), 60) == "BO: X!"


async def _stuck(run: tether.Run[Any]) -> bool:
    return bool((await run.describe()).workflow_task_error)


async def test_wrong_key_material_is_reported_and_nothing_is_lost(connect: Connect, queue: str, k1: Key) -> None:
    client = await connect([k1], queue=queue)
    run = await client.start(app.sov_echo, {"to": "cy", "body": "y"})
    impostor = await connect([Key(k1.id, os.urandom(32))], queue=queue)
    async with tether.Worker(impostor, workflows=[app.sov_echo], steps=[app.sov_shout]):
        await _wait_until(lambda: _stuck(run))
    assert "does not decrypt" in ((await run.describe()).workflow_task_error or "")
    async with tether.Worker(client, workflows=[app.sov_echo], steps=[app.sov_shout]):
        assert await asyncio.wait_for(run.result(), 60) == "CY: Y!"


async def test_zone_worker_with_another_key_fails_the_step_visibly(connect: Connect, queue: str,
                                                                    k1: Key, k2: Key) -> None:
    brain = await connect([k1], queue=queue)
    zone = await connect([k2], queue=queue)
    async with tether.Worker(brain, workflows=[app.sov_zoned], steps=[]), \
            tether.Worker(zone, queues=["vault"], workflows=[], steps=[app.sov_vault_len]):
        run = await brain.start(app.sov_zoned, "hello")
        with pytest.raises(tether.RunFailed) as info:
            await asyncio.wait_for(run.result(), 60)
    assert f"DecryptionFailed: payload was encrypted with key {k1.id!r}" in str(info.value)
    (step,) = (await run.describe()).steps
    # the step's code never ran (its arguments did not decrypt), so the engine's budget applies:
    # the step's 3 attempts plus the allowance for attempts lost with their workers
    assert step.attempts == engine_attempts(3) and "DecryptionFailed" in (step.error or "")


async def test_large_payloads_travel_by_claim_check(connect: Connect, queue: str, k1: Key, store: Path) -> None:
    client = await connect([k1], queue=queue)
    size = 3 * 1024 * 1024  # above Temporal's 2 MB payload limit
    async with tether.Worker(client, workflows=[app.sov_big], steps=[app.sov_make_doc]), \
            tether.Worker(client, queues=["vault"], workflows=[], steps=[app.sov_vault_len]):
        assert await asyncio.wait_for(client.run(app.sov_big, size), 60) == size
    stored = list(store.iterdir())
    assert stored and all(b"xxxxxxxx" not in f.read_bytes() for f in stored)  # ciphertext only


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")} | env
    full["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "tether", *args], env=full, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_cli_worker_refuses_to_start_without_a_key(tether_server: DevServer, tmp_path: Path) -> None:
    args = ("worker", "tests.apps.sov_basic", "--address", tether_server.address)
    res = _cli(*args, env={}, cwd=tmp_path)
    assert res.returncode == 1
    assert "no payload key" in res.stderr and "--allow-plaintext" in res.stderr
    assert "Traceback" not in res.stderr
    res = _cli(*args, "--key-file", "missing.json", env={}, cwd=tmp_path)
    assert res.returncode == 1 and "key file 'missing.json' not found" in res.stderr
    (tmp_path / "bad.json").write_text("{")
    res = _cli(*args, env={"TETHER_KEY_FILE": "bad.json"}, cwd=tmp_path)
    assert res.returncode == 1 and "key file 'bad.json' is corrupt" in res.stderr


async def test_cli_show_decrypts_with_the_local_key(connect: Connect, tether_server: DevServer,
                                                    queue: str, k1: Key, tmp_path: Path) -> None:
    client = await connect([k1], queue=queue)
    async with tether.Worker(client, workflows=[app.sov_echo], steps=[app.sov_shout]):
        run = await client.start(app.sov_echo, {"to": "di", "body": "visible"})
        await run.result()
    write_key_file(tmp_path / "k.json", [k1])
    args = ("show", run.id, "--address", tether_server.address)
    shown = await asyncio.to_thread(_cli, *args, env={"TETHER_KEY_FILE": "k.json"}, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "DI: VISIBLE!" in shown.stdout and "visible" in shown.stdout
    write_key_file(tmp_path / "other.json", [new_key()])
    blind = await asyncio.to_thread(_cli, *args, env={"TETHER_KEY_FILE": "other.json"}, cwd=tmp_path)
    assert blind.returncode == 0 and "VISIBLE" not in blind.stdout
    assert "cannot decode" in blind.stdout and k1.id in blind.stdout


def _keys_env(*keys: Key) -> str:
    import base64

    return ",".join(f"{k.id}:{base64.b64encode(k.secret).decode()}" for k in keys)


async def test_cli_run_explains_a_worker_without_the_key(tether_server: DevServer, queue: str, k1: Key, k2: Key,
                                                         tmp_path: Path) -> None:
    from tether.testing import run_worker_process

    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    worker = run_worker_process("tests.apps.sov_basic", address=tether_server.address, task_queue=queue,
                                env=env | {"TETHER_KEYS": _keys_env(k2), "PYTHONPATH": str(REPO)})
    try:
        await asyncio.sleep(2)  # the worker polls: `tether run` uses it instead of starting its own
        res = await asyncio.to_thread(
            _cli, "run", "tests.apps.sov_basic:sov_echo", "--input", '{"to": "e", "body": "f"}',
            "--address", tether_server.address, "--task-queue", queue,
            env={"TETHER_KEYS": _keys_env(k1)}, cwd=REPO)
    finally:
        worker.terminate()
        worker.wait(10)
    assert res.returncode == 2, res.stderr
    assert f"is paused: payload was encrypted with key {k1.id!r}" in res.stderr
    assert "once a worker has that key" in res.stderr and "deterministic" not in res.stderr
