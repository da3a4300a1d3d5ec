"""Acceptance: real MCP server processes (stdio, and streamable HTTP on loopback) listed and
called from workflows, in the server's zone; secrets by environment variable name only;
bad arguments back to the model; a server that fails to start named in one clear error."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import tether
from tests.agent.conftest import RunLog
from tests.apps import agent_mcp as app

TOKEN = "s3cret-token-4711"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def http_server() -> Iterator[str]:
    """The test MCP server over streamable HTTP on 127.0.0.1, requiring a bearer token."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, app.SERVER, "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "MCP_TEST_TOKEN": TOKEN})
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                why = proc.stderr.read() if proc.stderr else ""
                raise RuntimeError(f"test MCP server did not start: {why!r}") from None
            time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def _check_use(result: tether.AgentResult[str]) -> None:
    results = result.output.split(" || ")
    assert '"name": "Ada Lovelace"' in results[0] and '"plan": "gold"' in results[0]
    assert results[1] == "5"  # a plain value, unwrapped from the server's {"result": ...}
    assert results[2].startswith("error: invalid arguments:") and "'two' is not of type 'integer'" in results[2]
    assert results[3].startswith("error:") and "nobody" in results[3]  # the tool's own error, as a result


async def test_stdio_server_listed_and_called_in_its_zone(tether_client: tether.Client, run_log: RunLog) -> None:
    ask = app.McpAsk(transport="stdio", zone="crm")
    async with tether.Worker(tether_client, queues=["main", "crm"]):
        tools = await tether_client.run(app.agent_mcp_list, ask)
        run = await tether_client.start(app.agent_mcp_use, ask)
        result = await asyncio.wait_for(run.result(), 60)
        detail = await run.describe()
    assert [t.name for t in tools] == ["crm_lookup", "crm_add"]  # allow-list and prefix
    assert tools[1].parameters["properties"]["a"]["type"] == "integer" and tools[1].description == "Add two integers."
    _check_use(result)
    mcp_steps = [s for s in detail.steps if s.name.startswith("tether.mcp.")]
    assert [s.name for s in mcp_steps] == ["tether.mcp.list_tools"] + ["tether.mcp.call_tool"] * 4
    assert {s.zone for s in mcp_steps} == {"crm"}
    calls = run_log.entries("mcp")
    assert sorted(c["tool"] for c in calls) == ["add", "lookup", "lookup"]  # bad arguments never reached it
    assert len({c["pid"] for c in calls}) == 1  # one server process, kept open across calls


async def test_http_server_with_secret_from_env(tether_client: tether.Client, http_server: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_TEST_AUTH", f"Bearer {TOKEN}")
    ask = app.McpAsk(transport="http", url=http_server)
    async with tether.Worker(tether_client):
        tools = await tether_client.run(app.agent_mcp_list, ask)
        run = await tether_client.start(app.agent_mcp_use, ask)
        result = await asyncio.wait_for(run.result(), 60)
        detail = await run.describe()
    assert [t.name for t in tools] == ["crm_lookup", "crm_add"]
    _check_use(result)
    decoded = json.dumps([(s.input, s.result) for s in detail.steps], default=str)
    assert "MCP_TEST_AUTH" in decoded and TOKEN not in decoded  # the variable's name travels, never its value
    history = b"".join([ev.SerializeToString() async for ev in
                        tether_client.temporal.get_workflow_handle(run.id).fetch_history_events()])
    assert TOKEN.encode() not in history


async def test_http_server_refusing_the_worker_names_the_url(tether_client: tether.Client, http_server: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_TEST_BAD_AUTH", "Bearer wrong")
    ask = app.McpAsk(transport="http", url=http_server, auth_env="MCP_TEST_BAD_AUTH")
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.agent_mcp_list, ask)
        with pytest.raises(tether.RunFailed) as info:
            await asyncio.wait_for(run.result(), 60)
    assert info.value.error_type == "MCPServerFailed"
    assert f"MCP server '{http_server}' could not be reached" in str(info.value)


async def test_server_that_fails_to_start_names_its_command(tether_client: tether.Client, run_log: RunLog) -> None:
    command = [sys.executable, "-m", "no_such_mcp_server_module"]
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.agent_mcp_list, app.McpAsk(transport="stdio", command=command))
        with pytest.raises(tether.RunFailed) as info:
            await asyncio.wait_for(run.result(), 60)
    assert info.value.error_type == "MCPServerFailed"
    message = str(info.value)
    assert f"MCP server '{sys.executable} -m no_such_mcp_server_module' failed to start" in message
    assert "No module named no_such_mcp_server_module" in message
    steps = (await run.describe()).steps
    assert [(s.name, s.attempts) for s in steps] == [("tether.mcp.list_tools", 1)]  # not retried: a config error
