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
from typing import Any

import pytest

import tether
from tests.apps import sec_leaks as app
from tests.security._leak_support import cli, connect, key, readable_history, run_to_end, vault_file
from tether import observe
from tether.engine.codec import FileStore, Key, Keyring, build_codec
from tether.engine.devserver import DevServer
from tether.testing import ChatServer, Received, Reply, chat_reply, unique_queue

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
async def test_error_cause_carries_no_value(wf: tether.Workflow[..., Any], server: DevServer, key: Key,
                                            tmp_path: Path, vault_file: Path) -> None:
    queue = unique_queue("sec")
    codec = build_codec(Keyring([key]), store=FileStore(tmp_path / "payloads"))
    conn = tether.Connection(address=server.address, task_queue=queue, codec=codec, telemetry=True)
    client = tether.Client(await conn.connect(), conn)
    with observe.capture_spans() as spans:
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

    # every span of the run (the failed attempts record their errors): no value
    exported = "\n".join(s.to_json() for s in spans.get_finished_spans())
    assert "sec_find_account" in exported or "sec_validate" in exported
    assert [n for n in NEEDLES if n in exported.encode()] == []

    # what the server stores: messages are encrypted ("Encoded failure"), no plaintext at all
    stored = _db_bytes(server)
    assert run.id.encode() in stored and b"Encoded failure" in stored
    assert [n for n in NEEDLES if n in stored] == []


def _clerk(received: Received) -> Reply:
    """A cloud model that calls the vault tool once, then answers."""
    if any(m.get("role") == "tool" for m in received.body.get("messages", [])):
        return chat_reply("no record found")
    return Reply(tool_calls=[{"id": "call_1", "name": "sec_vault_record", "arguments": {"customer_id": "c-1"}}])


async def test_vault_tool_error_sent_to_the_cloud_model_carries_no_value(
        tether_server: DevServer, tmp_path: Path, vault_file: Path) -> None:
    client = await connect(tether_server.address, unique_queue("sec"), None, tmp_path / "payloads")
    with ChatServer(default=_clerk) as cloud:
        async with tether.Worker(client, workflows=[app.sec_agent_tool_error]), \
                tether.Worker(client, queues=["vault"], workflows=[]):
            result = await client.run(app.sec_agent_tool_error, {"way": "ssn", "model": cloud.model("gpt-cloud")})
    assert result == "no record found"
    tool_results = [m for r in cloud.requests for m in r.body["messages"] if m.get("role") == "tool"]
    assert tool_results and "sec_vault_record failed" in str(tool_results)  # the model was told it failed
    sent = "\n".join(str(r.body) for r in cloud.requests).encode()
    assert [n for n in NEEDLES if n in sent] == []
