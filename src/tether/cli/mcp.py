"""`tether mcp serve`: an app's workflows as MCP tools, over stdio or streamable HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tether.cli._common import CONNECTS, StateDir, app, connection, err
from tether.engine.app import load_app
from tether.engine.connection import Connection
from tether.errors import ConfigError, UsageError

mcp_app = typer.Typer(no_args_is_help=True, help="Serve workflows to MCP clients (agents, IDEs).")
app.add_typer(mcp_app, name="mcp", rich_help_panel="Setup")


@mcp_app.command("serve", epilog=CONNECTS)
def serve(
    app_spec: Annotated[str, typer.Argument(metavar="APP", help="Module or .py file with workflows.")],
    http: Annotated[bool, typer.Option("--http", help="Serve streamable HTTP instead of stdio.")] = False,
    host: Annotated[str, typer.Option(help="Address to bind with --http (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port with --http; the endpoint is /mcp.")] = 8765,
    wait: Annotated[float, typer.Option(help="Seconds a call waits for its run before returning the run id.")]
    = 30.0,
    worker: Annotated[bool, typer.Option("--worker/--no-worker",
                                         help="Run a worker here when none serves the queue.")] = True,
    allow_self_answer: Annotated[bool, typer.Option(
        "--allow-self-answer", help="Let MCP clients answer tasks of runs started through MCP (an agent "
                                    "approving its own request); off by default.")] = False,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """Offer each workflow of APP as an MCP tool: a call starts a run and returns its result."""
    if host not in ("127.0.0.1", "localhost", "::1") and http:
        raise UsageError(f"--host {host!r}: tether mcp serve binds loopback only (it has no authentication); "
                         "put an authenticating proxy in front to expose it")
    if http:
        _check_port(host, port)
    loaded = load_app(app_spec)
    if not loaded.workflows:
        raise UsageError(f"app {app_spec!r} registers no workflow to serve")
    conn = connection()
    logging.getLogger("temporalio").setLevel(logging.CRITICAL)  # step failures are results, not noise
    asyncio.run(_serve(loaded.workflows, loaded.zones(), conn, state_dir, http=http, host=host, port=port,
                       wait=wait, worker=worker, allow_self_answer=allow_self_answer))


async def _serve(workflows: dict[str, Any], zones: list[str], conn: Connection, state_dir: Path, *, http: bool,
                 host: str, port: int, wait: float, worker: bool, allow_self_answer: bool = False) -> None:
    from tether import mcp_server
    from tether.engine.session import has_workflow_poller, open_session
    from tether.engine.worker import MAIN, Worker

    async with contextlib.AsyncExitStack() as stack:
        streams = None if http else await stack.enter_async_context(mcp_server.stdio_streams())
        session = await stack.enter_async_context(open_session(conn, state_dir))
        client = session.client
        if worker and not await has_workflow_poller(client, client.connection.task_queue):
            await stack.enter_async_context(Worker(client, queues=[MAIN, *zones]))
        tools = mcp_server.WorkflowTools(client, workflows, wait=wait, allow_self_answer=allow_self_answer)
        server = mcp_server.build_server(tools)
        if streams is not None:
            await mcp_server.serve_stdio(server, streams)
            return
        ready = asyncio.Event()
        serving = asyncio.ensure_future(mcp_server.serve_http(server, host=host, port=port, ready=ready))
        await asyncio.wait({serving, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if ready.is_set():
            err.print(f"tether mcp: serving {len(workflows)} workflows at http://{host}:{port}/mcp", soft_wrap=True)
            sys.stderr.flush()
        await serving


def _check_port(host: str, port: int) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot serve MCP on {host}:{port}: {exc.strerror}; pick another --port") from None
