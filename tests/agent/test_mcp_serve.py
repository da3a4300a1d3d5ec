"""Acceptance: `tether mcp serve` (the real CLI, stdio and streamable HTTP on loopback) used by
the `mcp` SDK's client: list the workflows as tools, call one, get its result; a long run
returns its id, its open human task is answered through the helper tools."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

import tether
from tether.testing import unique_queue

REPO = Path(__file__).resolve().parents[2]


def _serve_args(client: tether.Client, *extra: str) -> list[str]:
    return ["-m", "tether", "mcp", "serve", "tests.apps.agent_serve", "--address", client.connection.address,
            "--task-queue", client.connection.task_queue, *extra]


def _data(result: Any) -> dict[str, Any]:
    assert result.structured_content is not None, result
    assert json.loads(result.content[0].text) == result.structured_content
    return result.structured_content  # type: ignore[no-any-return]


async def test_stdio_lists_calls_and_follows_a_long_run(tether_client: tether.Client) -> None:
    params = StdioServerParameters(command=sys.executable, args=_serve_args(tether_client, "--wait", "3",
                                                                            "--allow-self-answer"),
                                   env=dict(os.environ), cwd=str(REPO))
    async with Client(params, read_timeout_seconds=60) as mcp:
        listed = {t.name: t for t in (await mcp.list_tools()).tools}
        assert {"serve_greet", "serve_approve", "tether_run_status", "tether_list_tasks",
                "tether_answer_task"} <= set(listed)
        greet = listed["serve_greet"]
        assert greet.description == "Greet someone loudly."
        assert greet.input_schema["properties"]["name"]["type"] == "string"
        assert greet.input_schema["required"] == ["name"]
        assert listed["serve_approve"].input_schema["properties"]["input"]["type"] == "number"

        done = _data(await mcp.call_tool("serve_greet", {"name": "ada", "times": 2}))
        assert done["status"] == "completed" and done["result"] == {"text": "HELLO ADA HELLO ADA"}
        assert (await tether_client.get(done["run_id"]).describe()).status == "completed"

        bad = await mcp.call_tool("serve_greet", {"times": 2})
        assert bad.is_error and "invalid input for workflow 'serve_greet': field 'name'" in _data(bad)["error"]

        started = _data(await mcp.call_tool("serve_approve", {"input": 12.5}))
        assert started["status"] == "running" and "tether_run_status" in started["next"]
        (task,) = started["tasks"] or (await _tasks(mcp, started["run_id"]))
        assert task["question"] == "Pay 12.50 EUR?" and task["answer_schema"]["type"] == "boolean"
        wrong = await mcp.call_tool("tether_answer_task", {"task_id": task["task_id"], "answer": "maybe"})
        assert wrong.is_error
        answered = _data(await mcp.call_tool("tether_answer_task", {"task_id": task["task_id"], "answer": True,
                                                                    "answered_by": "claude"}))
        assert answered["status"] == "answered"
        status = _data(await mcp.call_tool("tether_run_status", {"run_id": started["run_id"], "wait_seconds": 20}))
        assert status == {"run_id": started["run_id"], "status": "completed", "result": "paid 12.50"}


async def _tasks(mcp: Client, run_id: str) -> list[dict[str, Any]]:
    for _ in range(100):
        found = _data(await mcp.call_tool("tether_list_tasks", {"run_id": run_id}))["tasks"]
        if found:
            return found  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError("the run opened no task")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_streamable_http_on_loopback(tether_client: tether.Client) -> None:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, *_serve_args(tether_client, "--http", "--port", str(port))],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "tether mcp serve --http did not start"
                await asyncio.sleep(0.1)
        async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=60) as mcp:
            assert "serve_greet" in {t.name for t in (await mcp.list_tools()).tools}
            done = _data(await mcp.call_tool("serve_greet", {"name": "bob"}))
        assert done["status"] == "completed" and done["result"] == {"text": "HELLO BOB"}
    finally:
        proc.terminate()
        proc.wait(20)


def test_busy_port_is_one_clear_line(tether_server: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = subprocess.run([sys.executable, "-m", "tether", "mcp", "serve", "tests.apps.agent_serve", "--http",
                            "--port", str(port), "--address", tether_server.address, "--task-queue",
                            unique_queue()], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"error: cannot serve MCP on 127.0.0.1:{port}" in r.stderr and "pick another --port" in r.stderr


@pytest.mark.parametrize("host", ["0.0.0.0"])
def test_non_loopback_host_refused(host: str) -> None:
    r = subprocess.run([sys.executable, "-m", "tether", "mcp", "serve", "tests.apps.agent_serve", "--http",
                        "--host", host], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "binds loopback only" in r.stderr
