"""Issue 12, item 1: error causes never carry a revealed value out of its zone.

A vault step written the way ruff's B904 asks (`raise LookupError(...) from e`) and one whose
pydantic ValidationError quotes the value: the Temporal database file holds no plaintext
(failure messages are encrypted like payloads) and what an authorised reader decodes
(`tether show --json`, every failure in the history) holds none either (the cause chain is
scrubbed before the error leaves the zone).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import tether
from tests.apps import sec_leaks as app
from tests.security._leak_support import cli, connect, key, readable_history, run_to_end, vault_file
from tether.codec import Key
from tether.engine.devserver import DevServer
from tether.testing import unique_queue

__all__ = ["key", "vault_file"]  # fixtures

NEEDLES = [app.SSN.encode(), app.SSN.replace("-", "").encode()]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """A dev server of this module's own, with its database in a file we can search."""
    with DevServer(tmp_path_factory.mktemp("temporal"), port=0, ui_port=0) as s:
        yield s


def _db_bytes(server: DevServer) -> bytes:
    assert server.db_path is not None
    return b"".join(f.read_bytes() for f in server.db_path.parent.glob("temporal.db*"))


@pytest.mark.parametrize("wf", [app.sec_cause, app.sec_pydantic], ids=["raise-from", "pydantic"])
async def test_error_cause_carries_no_value(wf: tether.Workflow, server: DevServer, key: Key,
                                            tmp_path: Path, vault_file: Path) -> None:
    queue = unique_queue("sec")
    client = await connect(server.address, queue, [key], tmp_path / "payloads")
    run = await run_to_end(client, wf, {"way": "ssn"})
    with pytest.raises(tether.RunFailed) as info:
        await run.result()
    assert app.SSN not in str(info.value)

    # what an authorised reader decodes: the failures are there, the value is not
    readable = await readable_history(client, run.id)
    assert ("no account" if wf is app.sec_cause else "validation error") in readable
    assert "withheld" in readable  # the cause that quoted the value was cut, not dropped
    assert [n for n in NEEDLES if n in readable.encode()] == []
    shown = cli(["show", run.id, "--json", "--address", server.address], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "sec_find_account" in shown.stdout or "sec_validate" in shown.stdout
    assert [n for n in NEEDLES if n in shown.stdout.encode()] == []

    # what the server stores: messages are encrypted ("Encoded failure"), no plaintext at all
    stored = _db_bytes(server)
    assert run.id.encode() in stored and b"Encoded failure" in stored
    assert [n for n in NEEDLES if n in stored] == []
