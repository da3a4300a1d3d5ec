"""`tether tasks` and `tether serve` through the real entry point (`python -m tether`)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

import httpx

import tether
from tests.apps import human_flows as flows
from tests.human.conftest import wait_for_task
from tether.engine.devserver import DevServer, free_port


async def cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `python -m tether ARGS` without blocking the event loop (the test's worker runs on it)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tether", *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200", **(env or {})})
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), 90)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_list_show_and_answer_from_the_cli(tether_server: DevServer, tether_client: tether.Client) -> None:
    addr = ("--address", tether_server.address)
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_approval, "Pay invoice INV-77?")
        task_id = f"{run.id}.1"
        await wait_for_task(tether_client, task_id)

        code, out, _ = await cli("tasks", "--run", run.id, *addr)
        assert code == 0 and task_id in out and "Pay invoice INV-77?" in out and "finance" in out
        code, out, _ = await cli("tasks", "--json", *addr)
        assert task_id in [t["id"] for t in json.loads(out)]
        code, out, _ = await cli("tasks", "show", task_id, *addr)
        assert code == 0 and "Pay invoice INV-77?" in out and '"invoice": "INV-1"' in out
        assert '"amount"' in out  # the answer schema is shown for an open task

        code, _, err = await cli("tasks", "answer", task_id, "--json", '{"approved": "nah", "amount": 1}', *addr)
        assert code == 2 and "field 'approved'" in err and len(err.strip().splitlines()) == 1
        code, _, err = await cli("tasks", "answer", task_id, "--json", "{approved: yes", *addr)
        assert code == 2 and "not valid JSON" in err
        assert (await tether_client.tasks.get(task_id)).status == "open"

        code, out, _ = await cli("tasks", "answer", task_id, "--json", '{"approved": true, "amount": 77}',
                                 "--as", "carol", *addr)
        assert code == 0 and "on behalf of carol" in out  # --as is a claim, kept beside the login
        assert await run.result() == flows.Approval(approved=True, amount=77)
        code, _, err = await cli("tasks", "answer", task_id, "--json", '{"approved": true, "amount": 1}', *addr)
        assert code == 2 and "already answered by os:" in err and "on behalf of carol" in err
        code, out, _ = await cli("tasks", "show", task_id, *addr)
        assert "on behalf of carol" in out


async def test_interactive_answer_prompts_from_the_schema(tether_server: DevServer,
                                                          tether_client: tether.Client) -> None:
    addr = ("--address", tether_server.address)
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_approval, "Pay?")
        await wait_for_task(tether_client, f"{run.id}.1")
        # approved? (y/n), amount (int; "lots" is re-asked), comment (default "")
        code, _, err = await cli("tasks", "answer", f"{run.id}.1", "--as", "dora", *addr,
                                   stdin="y\nlots\n15\n\n")
        assert code == 0, err
        assert await run.result() == flows.Approval(approved=True, amount=15, comment="")

        esc = await tether_client.start(flows.human_escalating, "Globex")
        await wait_for_task(tether_client, f"{esc.id}.1")
        code, _, err = await cli("tasks", "answer", f"{esc.id}.1", *addr, stdin="use\nGlobex\n3.25\n")
        assert code == 0, err
        assert await esc.result() == flows.Quote(supplier="Globex", price=3.25)


async def test_serve_runs_the_api_and_requires_a_token_when_set(tether_server: DevServer,
                                                                tether_client: tether.Client) -> None:
    code, _, err = await cli("serve", "--host", "0.0.0.0", "--address", tether_server.address)
    assert code == 1 and "TETHER_API_TOKEN" in err  # refused before binding anything

    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tether", "serve", "--port", str(port), "--address", tether_server.address,
        env={**os.environ, "TETHER_API_TOKEN": "tok"}, stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL)
    try:
        assert proc.stderr is not None
        banner = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
        assert f"http://127.0.0.1:{port}/api/tasks" in banner and "token required" in banner
        async with tether.Worker(tether_client), httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            run = await tether_client.start(flows.human_approval, "Pay?")
            await wait_for_task(tether_client, f"{run.id}.1")
            url = f"/api/tasks/{run.id}.1/answer"
            assert (await http.post(url, json={"answer": {"approved": True, "amount": 2}})).status_code == 401
            reply = await http.post(url, json={"answer": {"approved": True, "amount": 2}, "answered_by": "ed"},
                                    headers={"Authorization": "Bearer tok"}, timeout=60)
            assert reply.status_code == 200, reply.text
            assert (await run.result()).amount == 2
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
