"""Shared pieces of the leak tests: keyed clients, in-process zone workers, history read as text."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict

import tether
from tether.engine.codec import FileStore, Key, Keyring, build_codec, new_key, write_key_file
from tether.engine.converter import failure_text

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def vault_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own vault."""
    monkeypatch.setenv("TETHER_VAULT", str(tmp_path / "vault.db"))
    return tmp_path / "vault.db"


@pytest.fixture
def key(tmp_path: Path) -> Iterator[Key]:
    """A payload key, also written to `<tmp>/keys.json` for CLI subprocesses."""
    k = new_key()
    write_key_file(tmp_path / "keys.json", [k])
    yield k


async def connect(address: str, queue: str, keys: list[Key] | None, store: Path) -> tether.Client:
    """A client of `address` whose payloads are encrypted with `keys` (None: plaintext)."""
    codec = build_codec(Keyring(keys) if keys else None, store=FileStore(store))
    conn = tether.Connection(address=address, task_queue=queue, codec=codec)
    return tether.Client(await conn.connect(), conn)


async def run_to_end(client: tether.Client, wf: tether.Workflow[Any, Any], arg: Any,
                     zones: tuple[str, ...] = ("vault",)) -> tether.Run[Any]:
    """Start `wf` with a main worker and zone workers in this process; wait for it to end."""
    async with tether.Worker(client, workflows=[wf], steps=[]), \
            tether.Worker(client, queues=list(zones), workflows=[]):
        run = await client.start(wf, arg)
        with contextlib.suppress(tether.RunFailed):
            await asyncio.wait_for(run.result(), 90)
    return run


async def raw_history(client: tether.Client, run_id: str) -> bytes:
    """The run's history exactly as the server returns it (what it stores)."""
    events = [e async for e in client.temporal.get_workflow_handle(run_id).fetch_history_events()]
    return b"".join(e.SerializeToString() for e in events)


async def readable_history(client: tether.Client, run_id: str) -> str:
    """Every failure of the run, messages and stack traces decoded with the client's key, as text:
    what an authorised reader (tether show, Studio) can see."""
    conv = client.temporal.data_converter
    out = []
    async for ev in client.temporal.get_workflow_handle(run_id).fetch_history_events():
        for attrs in (ev.activity_task_failed_event_attributes, ev.workflow_execution_failed_event_attributes):
            if attrs.HasField("failure"):
                out.append(json.dumps(MessageToDict(await failure_text(conv, attrs.failure))))
        if ev.activity_task_started_event_attributes.HasField("last_failure"):
            failure = await failure_text(conv, ev.activity_task_started_event_attributes.last_failure)
            out.append(json.dumps(MessageToDict(failure)))
    return "\n".join(out)


def cli(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m tether ARGS` with the test's key file and vault."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    full = base | {"TETHER_KEY_FILE": str(tmp_path / "keys.json"), "TETHER_STATE_DIR": str(tmp_path / "state"),
                   "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{REPO}"} | env
    return subprocess.run([sys.executable, "-m", "tether", *args], env=full, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
