"""Workflow files Temporal's sandbox refuses: one line saying which import and what to do; `passthrough=`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import tether
from tether.engine.devserver import DevServer
from tether.errors import UsageError
from tether.testing import unique_queue

REPO = Path(__file__).resolve().parents[2]

CLAIMS = '''\
import httpx

import tether


@tether.step
async def fetch_policy(number: str) -> str:
    async with httpx.AsyncClient() as http:
        return http.__class__.__name__ + ":" + number


@tether.workflow{decoration}
async def intake_claim(number: str) -> str:
    return await fetch_policy(number)
'''


def tether_cmd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tether", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=_env())


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "COLUMNS": "200"}


@pytest.fixture
def target(tether_server: DevServer) -> list[str]:
    return ["--address", tether_server.address, "--task-queue", unique_queue("sandbox")]


def test_a_module_level_import_the_sandbox_refuses_is_named_in_one_line(tmp_path: Path, target: list[str]) -> None:
    (tmp_path / "claims.py").write_text(CLAIMS.format(decoration=""))
    r = tether_cmd("run", "claims.py:intake_claim", "--input", '"POL-1"', *target, cwd=tmp_path)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "Failed validating" not in r.stderr
    (line,) = [x for x in r.stderr.splitlines() if "sandbox" in x]
    assert "workflow 'intake_claim' cannot load in Temporal's workflow sandbox: claims.py:1 `import httpx`" in line
    assert "import httpx inside the step that uses it, or pass it through: " \
           "@tether.workflow(passthrough=['httpx'])" in line


def test_a_clock_read_at_import_time_is_named_with_its_line(tmp_path: Path, target: list[str]) -> None:
    (tmp_path / "intake.py").write_text("import datetime\n\nimport tether\n\nSTARTED = datetime.datetime.now()\n\n\n"
                                        "@tether.workflow\nasync def intake(n: int) -> int:\n    return n\n")
    r = tether_cmd("run", "intake.py:intake", "--input", "1", *target, cwd=tmp_path)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "workflow 'intake' cannot load in Temporal's workflow sandbox: intake.py:5 " \
           "`STARTED = datetime.datetime.now()` touches datetime.datetime.now at import time; move it into a step" \
           in r.stderr


def test_a_passed_through_module_loads_and_the_run_completes(tmp_path: Path, target: list[str]) -> None:
    (tmp_path / "claims.py").write_text(CLAIMS.format(decoration='(passthrough=["httpx"])'))
    r = tether_cmd("run", "claims.py:intake_claim", "--input", '"POL-1"', *target, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '"AsyncClient:POL-1"'


def test_passthrough_takes_module_names() -> None:
    async def flow() -> None: ...

    with pytest.raises(UsageError, match=r"passthrough takes a list of module names, e.g. \['httpx'\]"):
        tether.workflow(passthrough="httpx")(flow)

