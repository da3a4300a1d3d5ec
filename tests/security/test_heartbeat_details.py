"""Issue 12, item 4: heartbeat details never carry a value the step revealed out of its zone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import tether
from tests.apps import sec_leaks as app
from tests.security._leak_support import connect, raw_history, vault_file
from tether.engine.devserver import DevServer
from tether.testing import unique_queue

__all__ = ["vault_file"]  # fixtures

NEEDLES = [app.SSN.encode(), app.SSN.replace("-", "").encode()]


async def _details(run: tether.Run[Any], client: tether.Client) -> bytes:
    """The raw heartbeat details the server holds for the run's running step (waits for the step's own)."""
    handle = client.temporal.get_workflow_handle(run.id)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pending = (await handle.describe()).raw_description.pending_activities
        details = b"".join(p.heartbeat_details.SerializeToString() for p in pending
                           if p.HasField("heartbeat_details"))
        if b"working on" in details:  # the step's own beat (the engine's first beat has no details)
            return details
        await asyncio.sleep(0.1)
    raise AssertionError("the step never heartbeat")


async def test_heartbeat_details_are_withheld(tether_server: DevServer, tmp_path: Path, vault_file: Path) -> None:
    plain = await connect(tether_server.address, unique_queue("sec"), None, tmp_path / "payloads")
    release = tmp_path / "release"
    async with tether.Worker(plain, workflows=[app.sec_heartbeat], steps=[]), \
            tether.Worker(plain, queues=["vault"], workflows=[]):
        run = await plain.start(app.sec_heartbeat, {"way": "ssn", "release": str(release)})
        details = await _details(run, plain)
        release.write_text("done")
        assert await asyncio.wait_for(run.result(), 60) >= 1
    assert b"working on <ssn withheld>" in details  # the server's copy (no payload key here)
    assert [n for n in NEEDLES if n in details] == []
    assert [n for n in NEEDLES if n in await raw_history(plain, run.id)] == []


async def test_progress_shown_to_watchers_is_withheld(tether_server: DevServer, tmp_path: Path,
                                                      vault_file: Path) -> None:
    plain = await connect(tether_server.address, unique_queue("sec"), None, tmp_path / "payloads")
    release = tmp_path / "release"
    async with tether.Worker(plain, workflows=[app.sec_progressing], steps=[]), \
            tether.Worker(plain, queues=["vault"], workflows=[]):
        run = await plain.start(app.sec_progressing, {"way": "ssn", "release": str(release)})
        shown: list[str] = []
        async for ev in run.events():
            if ev.kind == "progress":
                shown.append(ev.text or "")
                if len(shown) == 3:
                    break
        handle = plain.temporal.get_workflow_handle(run.id)
        pending = (await handle.describe()).raw_description.pending_activities
        details = b"".join(p.heartbeat_details.SerializeToString() for p in pending)
        release.write_text("done")
        assert await asyncio.wait_for(run.result(), 60) >= 1
    # the exact form is cut; the separator-less one cannot be, so the whole message is withheld
    assert shown and all(t.startswith("<text withheld: it carried a form of sensitive value 'ssn'") for t in shown)
    assert [n for n in NEEDLES if any(n.decode() in t for t in shown)] == []
    assert b"progress" in details and [n for n in NEEDLES if n in details] == []  # the server's copy
