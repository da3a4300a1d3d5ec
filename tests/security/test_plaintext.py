"""Issue 12, item 6: encryption is enforced.

A worker with keys refuses plaintext payloads (a plain `temporal workflow start`, a client
without the key): the workflow task fails with a message naming the fix and no step runs.
The tether client and CLI refuse to send plaintext to a server that is not a local dev
server unless told to.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest

import tether
from tests.apps import sec_leaks as app
from tests.security._leak_support import cli, connect, key
from tether.engine.codec import Key, build_codec
from tether.engine.devserver import DevServer, temporal_binary
from tether.errors import ConfigError
from tether.testing import unique_queue

__all__ = ["key"]  # fixtures


async def _task_error(client: tether.Client, run_id: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        error = (await client.get(run_id).describe()).workflow_task_error
        if error:
            return error
        await asyncio.sleep(0.1)
    raise AssertionError("the workflow task never failed")


async def test_keyed_worker_refuses_plaintext_starts(tether_server: DevServer, tmp_path: Path, key: Key) -> None:
    queue = unique_queue("sec")
    keyed = await connect(tether_server.address, queue, [key], tmp_path / "payloads")
    plain = await connect(tether_server.address, queue, None, tmp_path / "payloads")
    marker = tmp_path / "ran"
    async with tether.Worker(keyed, workflows=[app.sec_plain]):
        started = await asyncio.to_thread(subprocess.run, [
            temporal_binary(), "workflow", "start", "--address", tether_server.address, "--task-queue", queue,
            "--type", "sec_plain", "--workflow-id", f"{queue}-cli", "--input", f'"{marker}"'],
            capture_output=True, text=True, timeout=60)
        assert started.returncode == 0, started.stderr
        from_client = await plain.start(app.sec_plain, str(marker))
        errors = [await _task_error(keyed, f"{queue}-cli"), await _task_error(keyed, from_client.id)]
    for error in errors:
        assert "refused an unencrypted payload" in error and "encrypting client" in error, error
    assert not marker.exists()  # neither the workflow nor its step ever ran
    for run_id in (f"{queue}-cli", from_client.id):
        await keyed.temporal.get_workflow_handle(run_id).terminate("test over")


async def test_client_refuses_plaintext_to_a_remote_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_ALLOW_PLAINTEXT", raising=False)
    remote = tether.Connection(address="203.0.113.9:7233", codec=build_codec(None))
    with pytest.raises(ConfigError, match=r"unencrypted; set TETHER_KEY_FILE .* or pass --allow-plaintext"):
        await remote.connect()  # refused before any connection is attempted
    assert tether.Connection(address="127.0.0.1:7233").local_dev
    assert not tether.Connection(address="127.0.0.1:7233", api_key="k").local_dev
    tether.Connection(address="203.0.113.9:7233", allow_plaintext=True)._refuse_plaintext(build_codec(None))
    monkeypatch.setenv("TETHER_ALLOW_PLAINTEXT", "1")
    remote._refuse_plaintext(build_codec(None))


def test_cli_refuses_plaintext_to_a_remote_server(tmp_path: Path) -> None:
    done = cli(["runs", "--address", "203.0.113.9:7233"], tmp_path, TETHER_KEY_FILE="")
    assert done.returncode == 1
    assert "would reach 203.0.113.9:7233 unencrypted" in done.stderr and "--allow-plaintext" in done.stderr
