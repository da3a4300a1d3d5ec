"""Item 8: `answered_by` records who authenticated, not who someone says they are. The CLI records the
OS user, the HTTP API the token's name, Studio the login, MCP the client; a self-declared name is
kept apart (`claimed_by`). An MCP client cannot approve the tasks of runs it started, nor of the run
calling it, unless the server was started with `--allow-self-answer`."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
from mcp import Client, StdioServerParameters
from mcp_types import Implementation

import tether
from tests.human.conftest import wait_for_task
from tests.security import ways_app
from tests.security._ways_support import REPO, cli, end, served, waiting_run
from tether.engine.devserver import DevServer

APPROVE = {"approved": True, "amount": 5000}


async def test_the_cli_records_the_os_user_and_keeps_as_apart(tether_server: DevServer,
                                                              tether_client: tether.Client) -> None:
    addr = ("--address", tether_server.address)
    async with tether.Worker(tether_client):
        run, task_id = await waiting_run(tether_client)
        code, out, err = await cli("tasks", "answer", task_id, "--json", json.dumps(APPROVE), "--as", "cfo", *addr)
        assert code == 0, err
        me = f"os:{getpass.getuser()}"
        assert f"answered by {me} on behalf of cfo" in out
        task = await tether_client.tasks.get(task_id)
        assert (task.answered_by, task.claimed_by) == (me, "cfo")
        code, out, _ = await cli("tasks", "show", task_id, *addr)
        assert f"by {me} on behalf of cfo" in out
        await run.result()
        code, out, _ = await cli("show", run.id, *addr)
        assert f"answered by {me} on behalf of cfo" in out


async def test_the_http_api_records_the_token_name_not_the_body(tether_client: tether.Client,
                                                                tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("# who may approve\nbot-7:bot-token-0123456789\n")
    async with tether.Worker(tether_client):
        run, task_id = await waiting_run(tether_client)
        try:
            async with served("serve", tether_client, "--token-file", str(tokens)) as api, \
                    httpx.AsyncClient(base_url=api.url, timeout=60) as http:
                r = await http.post(f"/api/tasks/{task_id}/answer",
                                    json={"answer": APPROVE, "answered_by": "cfo"},
                                    headers={"Authorization": "Bearer bot-token-0123456789", "X-Tether-User": "ceo"})
                assert r.status_code == 200, r.text
                assert (r.json()["answered_by"], r.json()["claimed_by"]) == ("token:bot-7", "cfo")
        finally:
            await end(tether_client, run)


async def test_studio_records_the_login(tether_client: tether.Client, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("alice:alice-token-0123456789\nbob:bob-token-0123456789\n")
    async with tether.Worker(tether_client):
        run, task_id = await waiting_run(tether_client)
        try:
            async with served("studio", tether_client, "--token-file", str(tokens)) as studio, \
                    httpx.AsyncClient(base_url=studio.url, timeout=60) as browser:
                await browser.get("/login")
                csrf = browser.cookies["tether_csrf"]
                logged = await browser.post("/login", data={"token": "bob-token-0123456789", "csrf": csrf})
                assert logged.status_code == 303
                page = await browser.post(f"/inbox/{task_id}", data={
                    "csrf": csrf, "f.approved": "true", "f.amount": "5000", "f.comment": "", "answered_by": "cfo"})
                assert page.status_code == 303, page.text
                task = await tether_client.tasks.get(task_id)
                assert (task.answered_by, task.claimed_by) == ("studio:bob", "cfo")
                shown = (await browser.get(f"/inbox/{task_id}")).text
                assert "studio:bob" in shown and "cfo" in shown and "as they said" in shown
        finally:
            await end(tether_client, run)


def _mcp(client: tether.Client, *extra: str) -> StdioServerParameters:
    conn = client.connection
    return StdioServerParameters(command=sys.executable, cwd=str(REPO), env=dict(os.environ), args=[
        "-m", "tether", "mcp", "serve", "tests.security.ways_app", "--wait", "1", "--address", conn.address,
        "--task-queue", conn.task_queue, *extra])


def _data(result: Any) -> dict[str, Any]:
    return json.loads(result.content[0].text)  # type: ignore[no-any-return]


async def test_an_mcp_agent_cannot_approve_its_own_request(tether_client: tether.Client) -> None:
    agent = Implementation(name="payments-agent", version="1")
    async with tether.Worker(tether_client), \
            Client(_mcp(tether_client), read_timeout_seconds=60, client_info=agent) as mcp:
        started = _data(await mcp.call_tool("ways_approve", {"input": 9000}))
        assert started["status"] == "running"
        task_id = f"{started['run_id']}.1"
        await wait_for_task(tether_client, task_id)
        forged = await mcp.call_tool("tether_answer_task", {"task_id": task_id, "answer": True,
                                                            "answered_by": "cfo"})
        assert forged.is_error and "started through MCP (by mcp:payments-agent)" in _data(forged)["error"]
        assert "tether tasks answer" in _data(forged)["error"]
        assert (await tether_client.tasks.get(task_id)).status == "open"

        # a run not started through MCP, but the one whose agent calls the tool (tether's MCP client says so)
        own = await tether_client.start(ways_app.ways_approve, 10.0)
        await wait_for_task(tether_client, f"{own.id}.1")
        mine = await mcp.call_tool("tether_answer_task", {"task_id": f"{own.id}.1", "answer": True},
                                   meta={"tether/run_id": own.id})  # type: ignore[arg-type]  # open TypedDict (PEP 728)
        assert mine.is_error and "is the run calling this tool" in _data(mine)["error"]
        assert (await tether_client.tasks.get(f"{own.id}.1")).status == "open"
        await end(tether_client, own, tether_client.get(started["run_id"]))

        # the approval asked by a child of an MCP-started run is no different
        parent = _data(await mcp.call_tool("ways_pay_via_child", {"input": 9500}))
        child_task = await _child_task(tether_client, parent["run_id"])
        forged = await mcp.call_tool("tether_answer_task", {"task_id": child_task, "answer": True})
        assert forged.is_error and f"is a child of run {parent['run_id']}" in _data(forged)["error"]
        assert (await tether_client.tasks.get(child_task)).status == "open"
        await end(tether_client, tether_client.get(child_task.rpartition(".")[0]), tether_client.get(parent["run_id"]))

    # explicitly allowed: the answer records the MCP client, the claimed name apart
    async with tether.Worker(tether_client), \
            Client(_mcp(tether_client, "--allow-self-answer"), read_timeout_seconds=60, client_info=agent) as mcp:
        started = _data(await mcp.call_tool("ways_approve", {"input": 7}))
        task_id = f"{started['run_id']}.1"
        await wait_for_task(tether_client, task_id)
        done = await mcp.call_tool("tether_answer_task", {"task_id": task_id, "answer": True, "on_behalf_of": "cfo"})
        assert not done.is_error, _data(done)
        task = await tether_client.tasks.get(task_id)
        assert (task.answered_by, task.claimed_by) == ("mcp:payments-agent", "cfo")
        status = _data(await mcp.call_tool("tether_run_status", {"run_id": started["run_id"], "wait_seconds": 60}))
        assert status["status"] == "completed"


async def _child_task(client: tether.Client, parent: str) -> str:
    for _ in range(300):
        found = [t.id for t in await client.tasks.list() if t.run_id.startswith(parent + "/")]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no child of {parent} opened a task")
