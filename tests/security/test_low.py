"""Item 10: Ctrl-C on `tether run` says the run goes on and how to follow or cancel it; error lines
never quote key material; MCP's `wait_seconds` is bounded; a token never has to appear in the
process list (`--token-file`, TETHER_API_TOKEN; `--token` warns and is hidden)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import httpx

import tether
from tests.apps import agent_serve, human_flows
from tests.human.conftest import wait_for_task
from tests.security._ways_support import REPO, cli, end, served
from tether.mcp_server import WorkflowTools

MAX_WAIT_SECONDS = 300  # what the tool's schema promises


async def test_ctrl_c_on_tether_run_says_the_run_goes_on(tether_client: tether.Client) -> None:
    conn = tether_client.connection
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tether", "run", "tests/apps/human_flows.py:human_approval", "--input", '"Pay?"',
        "--address", conn.address, "--task-queue", conn.task_queue, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ, "COLUMNS": "300"})
    assert proc.stderr is not None
    first = (await asyncio.wait_for(proc.stderr.readline(), 60)).decode()
    found = re.search(r"run (\S+) started", first)
    assert found, first
    run_id = found.group(1)
    try:
        await wait_for_task(tether_client, f"{run_id}.1")  # well under way: waiting on a person
        proc.send_signal(signal.SIGINT)
        _, rest = await asyncio.wait_for(proc.communicate(), 60)
        said = rest.decode()
        assert proc.returncode == 130, said
        assert f"run {run_id} goes on" in said and "Traceback" not in said and "aborted" not in said
        assert f"`tether show {run_id}`" in said and f"`tether cancel {run_id}`" in said
        assert "tether worker tests/apps/human_flows.py" in said  # its worker stopped: how it resumes
        assert (await tether_client.get(run_id).describe()).status == "running"
    finally:
        await end(tether_client, tether_client.get(run_id))


async def test_error_lines_never_quote_key_material(tether_client: tether.Client) -> None:
    key = "c2VjcmV0LWtleS1tYXRlcmlhbC0wMTIzNDU2Nzg5YWI="  # a bare key where `id:key` belongs
    code, out, err = await cli("tasks", "--address", tether_client.connection.address, env={"TETHER_KEYS": key})
    assert code == 1 and "TETHER_KEYS" in err and "Traceback" not in err
    pieces = {key[i:i + 8] for i in range(len(key) - 7)}
    assert not [p for p in pieces if p in out + err], err


async def test_a_bad_payload_threshold_is_one_clear_line(tether_client: tether.Client) -> None:
    for command in (("runs",), ("worker", "tests/apps/basics.py", "--allow-plaintext")):
        code, _, err = await cli(*command, "--address", tether_client.connection.address,
                                 env={"TETHER_PAYLOAD_THRESHOLD": "lots"})
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "TETHER_PAYLOAD_THRESHOLD must be a whole number of bytes" in err and "'lots'" in err
        assert "ValueError" not in err and "invalid literal" not in err


async def test_mcp_wait_seconds_is_bounded(tether_client: tether.Client) -> None:
    tools = WorkflowTools(tether_client, {"serve_approve": agent_serve.serve_approve})
    schema = {t.name: t.input_schema for t in tools.listing()}["tether_run_status"]
    assert schema["properties"]["wait_seconds"]["maximum"] == MAX_WAIT_SECONDS
    run = await tether_client.start(human_flows.human_approval, "Pay?")  # no worker: it never finishes
    try:
        for wait in (1e9, MAX_WAIT_SECONDS + 1, -1, "inf", "nan", "soon"):
            data, is_error = await asyncio.wait_for(
                tools.call("tether_run_status", {"run_id": run.id, "wait_seconds": wait}), 20)
            assert is_error and "wait_seconds" in data["error"], (wait, data)
        data, is_error = await tools.call("tether_run_status", {"run_id": run.id, "wait_seconds": 0.2})
        assert not is_error and data["status"] == "running"
    finally:
        await end(tether_client, run)


async def test_the_token_stays_out_of_the_process_list(tether_client: tether.Client, tmp_path: Path) -> None:
    token = "never-in-ps-0123456789abcdef"
    secret = tmp_path / "token"
    secret.write_text(token + "\n")
    async with served("studio", tether_client, "--token-file", str(secret)) as studio:
        cmdline = Path(f"/proc/{studio.proc.pid}/cmdline").read_bytes().decode()
        assert token not in cmdline and str(secret) in cmdline
        async with httpx.AsyncClient(base_url=studio.url, timeout=60) as http:
            assert (await http.get("/api/tasks")).status_code == 401
            assert (await http.get("/api/tasks", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    async with served("serve", tether_client, env={"TETHER_API_TOKEN": token}) as api:
        assert token not in Path(f"/proc/{api.proc.pid}/cmdline").read_bytes().decode()
        assert "warning" not in api.banner
    async with served("serve", tether_client, "--token", token) as api:
        assert "--token is visible to every user" in api.banner and "--token-file" in api.banner
    code, out, _ = await cli("serve", "--help")
    assert code == 0 and "--token-file" in out and "--token " not in out
