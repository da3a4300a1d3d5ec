"""Acceptance: fallback visible in `tether show`, a model call surviving a killed worker, and
bad model configuration reported as one clear line by the real CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tether
from tests.apps import llm_flows as app
from tether import llm
from tether.engine.devserver import DevServer
from tether.testing import run_worker_process, unique_queue

REPO = Path(__file__).resolve().parents[2]


def tether_cmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tether", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env=env)


async def test_malformed_twice_then_fallback_shows_each_model(tether_client: tether.Client) -> None:
    ask = app.Ask(model=app.BROKEN.model, prompt="Invoice INV-7 from ACME GmbH, 339.15 EUR",
                  fallbacks=[app.GOOD.model], repairs=1)
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.llm_extract, ask, id=f"llm-fallback-{unique_queue('r')}")
        out = await run.result()
    assert out.fields == app.InvoiceFields(supplier="ACME GmbH", total=339.15, currency="EUR")
    assert out.usage.calls == 3 and set(out.usage.by_model) == {app.BROKEN.model, app.GOOD.model}

    conn = tether_client.connection
    show = tether_cmd("show", run.id, "--address", conn.address, "--task-queue", conn.task_queue)
    assert show.returncode == 0, show.stderr
    rows = [line for line in show.stdout.splitlines() if "llm scripted:" in line]
    assert len(rows) == 3, show.stdout
    assert "llm scripted:llm-broken · structured InvoiceFields" in rows[0]
    assert "repair 1 (invalid reply from scripted:llm-broken: Invalid JSON" in rows[1]
    assert "llm scripted:llm-good · structured InvoiceFields · fallback 1 (invalid reply" in rows[2]
    assert all("completed" in r for r in rows)
    assert "models: 3 calls" in show.stdout and "scripted:llm-broken x2, scripted:llm-good x1" in show.stdout
    as_json = tether_cmd("show", run.id, "--json", "--address", conn.address, "--task-queue", conn.task_queue)
    usage = json.loads(as_json.stdout)["model_usage"]
    assert (usage["calls"], usage["by_model"][app.GOOD.model]["calls"]) == (3, 1)


async def _wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        await asyncio.sleep(0.05)


async def test_worker_killed_during_a_slow_model_call(tether_client: tether.Client, tmp_path: Path) -> None:
    marker = tmp_path / "in-flight"
    conn = tether_client.connection
    first = run_worker_process("tests.apps.llm_flows", address=conn.address, task_queue=conn.task_queue)
    try:
        run = await tether_client.start(app.llm_slow_chat, str(marker))
        await _wait_for(marker)  # the first worker is inside the model call
        killed_pid = int(marker.read_text())
        assert killed_pid == first.pid
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        killed_at = time.monotonic()
        async with tether.Worker(tether_client):
            text = await asyncio.wait_for(run.result(), 60)
            detail = await run.describe()
        recovered_in = time.monotonic() - killed_at
    finally:
        if first.poll() is None:
            first.kill()
    assert text == f"answered by pid {os.getpid()}"
    (step,) = [s for s in detail.steps if s.name == llm.STEP_NAME]
    assert (step.attempts, step.status) == (2, "completed")
    # the heartbeat timeout is 2s; the attempt's 5-minute timeout never came into play
    assert recovered_in < 30


@pytest.fixture
def cli_target(tether_server: DevServer) -> list[str]:
    return ["--address", tether_server.address, "--task-queue", unique_queue("llm-cli")]


def _error_lines(stderr: str) -> list[str]:
    """The run's outcome line(s): the CLI prints exactly one for a failed run."""
    return [line for line in stderr.splitlines() if line.startswith(("✗ run", "error:"))]


@pytest.mark.parametrize("model, expected", [
    ("gemini:flash", "unknown model provider 'gemini' in 'gemini:flash'; use one of:"),
    ("gpt-4o", "model 'gpt-4o' is not a 'provider:model' string"),
    ("mistral:mistral-small-latest", "MISTRAL_API_KEY is not set: export it to use 'mistral:mistral-small-latest'"),
])
def test_cli_reports_bad_model_in_one_line(cli_target: list[str], model: str, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MISTRAL_API_KEY"}
    r = tether_cmd("run", "tests.apps.llm_flows:llm_chat_flow", "--input",
                   json.dumps({"model": model, "prompt": "hi"}), *cli_target, env=env)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    (line,) = _error_lines(r.stderr)
    assert expected in line


def test_cli_reports_missing_local_extra(cli_target: list[str], tmp_path: Path) -> None:
    # a sitecustomize that hides llama_cpp, as if `tether[local]` were not installed
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['llama_cpp'] = None\n")
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    r = tether_cmd("run", "tests.apps.llm_flows:llm_chat_flow", "--input",
                   json.dumps({"model": "local:smollm2", "prompt": "hi"}), *cli_target, env=env)
    assert r.returncode == 1, r.stderr
    (line,) = _error_lines(r.stderr)
    assert "runs on the worker with llama-cpp-python, which is not installed: pip install 'tether[local]'" in line


def test_cli_refuses_an_app_whose_required_key_is_missing(cli_target: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MISTRAL_API_KEY"}
    r = tether_cmd("run", "tests.apps.llm_needs_key:llm_needs_key", "--input", '"hi"', *cli_target, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = _error_lines(r.stderr)
    assert "MISTRAL_API_KEY is not set" in line and "started" not in r.stderr
    listed = tether_cmd("runs", "--json", "--limit", "200", *cli_target[:2])
    assert all(run["task_queue"] != cli_target[3] for run in json.loads(listed.stdout))
