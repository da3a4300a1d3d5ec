"""Shared helpers of the "ways in" security tests: the real CLI as a subprocess, a served HTTP
API or Studio on loopback, and runs waiting on a human task."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tether
from tests.apps import human_flows as flows
from tests.human.conftest import wait_for_task
from tether.engine.devserver import free_port

REPO = Path(__file__).resolve().parents[2]


async def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
              stdin: str | None = None, timeout: float = 90, unset: tuple[str, ...] = ()) -> tuple[int, str, str]:
    """Run `python -m tether ARGS` to its end without blocking the event loop (`unset`: variables left out)."""
    full = {k: v for k, v in {**os.environ, "COLUMNS": "200", **(env or {})}.items() if k not in unset}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tether", *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=cwd or REPO, env=full)
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@dataclass
class Served:
    """A `tether serve` / `tether studio` process on loopback: its URL and process."""

    url: str
    port: int
    proc: asyncio.subprocess.Process
    banner: str


@contextlib.asynccontextmanager
async def served(command: str, client: tether.Client, *extra: str, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> AsyncIterator[Served]:
    """`tether COMMAND --port P ...` against the test's engine and queue, until the test ends (Ctrl-C)."""
    port = free_port()
    conn = client.connection
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tether", command, *extra, "--port", str(port), "--address", conn.address,
        "--task-queue", conn.task_queue, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        cwd=cwd or REPO, env={**os.environ, "COLUMNS": "250", **(env or {})})
    assert proc.stderr is not None
    banner = ""
    try:
        while f":{port}" not in banner:  # warnings may come first; the banner names the port
            line = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
            assert line, f"`tether {command}` exited before serving: {banner}"
            banner += line
        scheme = "https" if "https://" in banner else "http"
        yield Served(f"{scheme}://127.0.0.1:{port}", port, proc, banner)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def waiting_run(client: tether.Client, question: str = "Pay invoice INV-66 (12 400 EUR)?") -> tuple[
        tether.Run[Any], str]:
    """A run of `human_approval` waiting on its task; returns (run, task id)."""
    run = await client.start(flows.human_approval, question)
    task_id = f"{run.id}.1"
    await wait_for_task(client, task_id)
    return run, task_id


async def end(client: tether.Client, *runs: tether.Run[Any]) -> None:
    """Terminate runs a test left open (no worker needed)."""
    for run in runs:
        with contextlib.suppress(Exception):
            await client.temporal.get_workflow_handle(run.id).terminate("test over")


async def eventually(check: Callable[[], object], *, timeout: float = 30) -> None:
    """Retry an async assertion until it passes or `timeout` passes."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            await check()  # type: ignore[misc]
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)

