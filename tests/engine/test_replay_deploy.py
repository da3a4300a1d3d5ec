"""Replay before deploy, against the real dev server: unchanged code passes, swapping two steps
fails naming the run, and `tether.patched` makes the change safe again."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import tether
from tether.engine.app import load_app
from tether.engine.devserver import DevServer
from tether.testing import replay

REPO = Path(__file__).resolve().parents[2]

# step names unique in the test process (other tests and the examples have a `book` step)
STEPS = '''
import tether


@tether.step
def nightly_load(day: str) -> list[str]:
    return [day + "-1", day + "-2"]


@tether.step
def nightly_book(ids: list[str]) -> int:
    return len(ids)


@tether.step
def nightly_report(n: int) -> str:
    return f"booked {n}"

'''
BEFORE = '''
@tether.workflow(name="WORKFLOW")
async def nightly(day: str) -> str:
    ids = await nightly_load(day)
    n = await nightly_book(ids)
    return await nightly_report(n)
'''
SWAPPED = '''
@tether.workflow(name="WORKFLOW")
async def nightly(day: str) -> str:
    n = await nightly_book([day])
    ids = await nightly_load(day)
    return await nightly_report(n + len(ids))
'''
PATCHED = '''
@tether.workflow(name="WORKFLOW")
async def nightly(day: str) -> str:
    if tether.patched("book-first"):
        n = await nightly_book([day])
        ids = await nightly_load(day)
        return await nightly_report(n + len(ids))
    ids = await nightly_load(day)
    n = await nightly_book(ids)
    return await nightly_report(n)
'''


def tether_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tether", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def write_app(path: Path, body: str, workflow: str) -> None:
    path.write_text(STEPS + body.replace("WORKFLOW", workflow))


async def test_replay_passes_fails_on_swapped_steps_and_passes_with_patched(
        tether_client: tether.Client, tether_server: DevServer, tmp_path: Path) -> None:
    name = f"nightly_{uuid.uuid4().hex[:8]}"
    app_file = tmp_path / f"{name}_app.py"
    write_app(app_file, BEFORE, name)
    loaded = load_app(str(app_file))
    async with tether.Worker(tether_client, workflows=list(loaded.workflows.values())):
        run = await tether_client.start(name, "mon", id=f"{name}-run")
        assert await run.result(timeout=30) == "booked 2"
    server = ["--address", tether_server.address]

    exported = tether_cmd("history", "export", run.id, *server)
    assert exported.returncode == 0, exported.stderr
    fixture = tmp_path / "nightly.json"
    fixture.write_text(exported.stdout)
    assert replay(str(app_file), fixture).compatible  # the pytest form, unchanged code

    unchanged = tether_cmd("replay", str(app_file), "--since", "1h", *server)
    assert unchanged.returncode == 0, unchanged.stderr
    assert f"ok    {run.id}" in unchanged.stdout and "safe to deploy" in unchanged.stderr

    write_app(app_file, SWAPPED, name)
    for how in (["--run", run.id, *server], ["--file", str(fixture)]):
        swapped = tether_cmd("replay", str(app_file), *how)
        assert swapped.returncode == 1, swapped.stderr
        assert f"FAIL  {run.id} ({name}) diverges at step 1 'nightly_load'" in swapped.stdout
        assert "'nightly_book'" in swapped.stdout  # what the new code schedules there
        assert f"cannot continue with the current code ({run.id})" in swapped.stderr
        assert "tether.patched" in swapped.stderr and "Traceback" not in swapped.stderr

    write_app(app_file, PATCHED, name)
    patched = tether_cmd("replay", str(app_file), "--run", run.id, *server)
    assert patched.returncode == 0, patched.stdout + patched.stderr
    assert f"ok    {run.id}" in patched.stdout


def test_a_history_file_that_is_not_one(tmp_path: Path) -> None:
    bad = tmp_path / "h.json"
    bad.write_text('{"nothing": 1}')
    with pytest.raises(tether.UsageError, match=r"no workflow history events.*tether history export"):
        replay("tests.apps.lifecycle", bad)
    with pytest.raises(tether.UsageError, match="cannot read history file"):
        replay("tests.apps.lifecycle", tmp_path / "missing.json")

