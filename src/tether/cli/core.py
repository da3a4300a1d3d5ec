"""Core commands: dev, run, worker, runs, show, cancel."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from tether import _render
from tether.cli._common import (
    Address,
    ApiKey,
    Namespace,
    Queue,
    StateDir,
    TlsCa,
    TlsCert,
    TlsKey,
    app,
    conn_from,
    err,
    out,
)
from tether.cli.keys import AllowPlaintext, KeyFile, use_dev_key
from tether.cli.observe import CaptureContent, MetricsPort, telemetry_setup
from tether.codec import worker_codec
from tether.engine.app import load_app, split_target
from tether.engine.client import Client, resolve_workflow
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer, running_server
from tether.engine.session import has_workflow_poller, open_session
from tether.engine.worker import MAIN, Worker
from tether.errors import UsageError
from tether.llm import _report as llm_report


@app.command()
def dev(
    app_spec: Annotated[str, typer.Argument(metavar="APP", help="Module or .py file with workflows.")],
    port: Annotated[int, typer.Option(help="gRPC port of the embedded engine.")] = 7233,
    ui_port: Annotated[int | None, typer.Option(help="Web UI port (default: port + 1000).")] = None,
    separate_zones: Annotated[bool, typer.Option(help="Run each zone's steps in its own process.")] = False,
    state_dir: StateDir = Path(".tether"),
    task_queue: Queue = None,
    metrics_port: MetricsPort = None, capture_content: CaptureContent = None,
    studio: Annotated[bool, typer.Option("--studio/--no-studio", help="Serve Studio, the web app.")] = True,
    studio_port: Annotated[int, typer.Option(help="Studio's port on 127.0.0.1.")] = 7300,
) -> None:
    """Start the embedded engine (or reuse it), a worker for APP and Studio; Ctrl-C stops them."""
    loaded = load_app(app_spec)
    use_dev_key(state_dir)
    telemetry_setup("dev", state_dir, metrics_port, capture_content)  # spans kept in <state dir>/traces.db
    asyncio.run(_dev(loaded.spec, loaded.zones(), port, ui_port, separate_zones, state_dir,
                     conn_from(None, None, task_queue), studio=(loaded.workflows, studio_port) if studio else None))


async def _dev(spec: str, zones: list[str], port: int, ui_port: int | None, separate: bool,
               state_dir: Path, conn: Connection, *, studio: tuple[dict[str, Any], int] | None = None) -> None:
    info = running_server(state_dir)
    server = None
    if info is None:
        server = DevServer(state_dir, port=port, ui_port=ui_port).start()
        address, ui_url = server.address, server.ui_url
    else:
        address, ui_url = info.address, info.ui_url
    children: list[subprocess.Popen[bytes]] = []
    web = None
    try:
        conn = Connection(address=address, namespace=conn.namespace, task_queue=conn.task_queue)
        client = Client(await conn.connect(), conn)
        queues = [MAIN] if separate else [MAIN, *zones]
        if separate:
            children = [_spawn_zone_worker(spec, z, conn) for z in zones]
        worker = Worker(client, queues=queues)
        if studio is not None:
            from tether.cli.studio import start_for_dev

            web, studio_line = await start_for_dev(client, studio[0], studio[1], state_dir, ui_url)
        reused = " (reused)" if server is None else ""
        out.print(f"[bold]tether dev[/]  engine {address}{reused}   Web UI {ui_url or 'off'}")
        out.print(f"  state  {state_dir}/   queues {', '.join(worker.task_queues)}"
                  + (f"   zone workers: {', '.join(zones)}" if children else ""))
        if studio is not None:
            out.print(studio_line)
        out.print("  ready: `tether run APP:WORKFLOW --input JSON` in another terminal; Ctrl-C stops")
        await _until_signal(worker.run())
    finally:
        if web is not None:
            await web.stop()
        for child in children:
            child.terminate()
        for child in children:
            child.wait(10)
        if server is not None:
            server.stop()
        out.print("stopped")


def _spawn_zone_worker(spec: str, zone: str, conn: Connection) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tether", "worker", spec, "--queues", zone,
           "--address", conn.address, "--namespace", conn.namespace, "--task-queue", conn.task_queue]
    return subprocess.Popen(cmd)


async def _until_signal(coro: Any) -> None:
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@app.command()
def run(
    target: Annotated[str, typer.Argument(metavar="APP:WORKFLOW", help="e.g. examples/invoice.py:process_invoice")],
    input: Annotated[str | None, typer.Option("--input", "-i", help="Input as JSON, or @file.json.")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Print the run id and return at once.")] = False,
    run_id: Annotated[str | None, typer.Option("--id", help="Run id (default: generated).")] = None,
    state_dir: StateDir = Path(".tether"),
    address: Address = None, namespace: Namespace = None, task_queue: Queue = None,
    tls_cert: TlsCert = None, tls_key: TlsKey = None, tls_ca: TlsCa = None, api_key: ApiKey = None,
) -> None:
    """Start a run of a workflow, show its steps live and print its result."""
    spec, name = split_target(target)
    if name is None:
        raise UsageError(f"name the workflow to run: {target}:WORKFLOW")
    loaded = load_app(spec)
    wf = resolve_workflow(name) if name in loaded.workflows else _unknown(name, loaded.workflows)
    args_value = _read_input(input)
    wf.validate_input(args_value)  # reject before touching any server
    conn = conn_from(address, namespace, task_queue, tls_cert, tls_key, tls_ca, api_key)
    if not conn.explicit:  # the embedded engine: runs served here are traced like under `tether dev`
        telemetry_setup("run", state_dir, None, None)
    code = asyncio.run(_run(wf, args_value, run_id, no_wait, state_dir, conn, loaded.zones()))
    raise typer.Exit(code)


def _unknown(name: str, workflows: dict[str, Any]) -> Any:
    from tether.errors import UnknownWorkflow

    raise UnknownWorkflow(name, list(workflows))


def _read_input(raw: str | None) -> Any:
    if raw is None:
        return None
    text, source = raw, "--input"
    if raw.startswith("@"):
        path = Path(raw[1:])
        try:
            text, source = path.read_text(), str(path)
        except OSError as exc:
            raise UsageError(f"cannot read input file {str(path)!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}") from None


async def _run(wf: Any, value: Any, run_id: str | None, no_wait: bool, state_dir: Path,
               conn: Connection, zones: list[str]) -> int:
    if os.environ.get("TETHER_DEBUG") != "1":
        # Step failures are shown as progress lines; the worker's own tracebacks are noise here.
        logging.getLogger("temporalio").setLevel(logging.CRITICAL)
    async with open_session(conn, state_dir) as session:
        client = session.client
        worker = None
        if not await has_workflow_poller(client, conn.task_queue):
            if no_wait:
                err.print(f"note: no worker is serving queue {conn.task_queue!r}; the run will "
                          "proceed once `tether dev` or `tether worker` runs")
            else:
                worker = Worker(client, queues=[MAIN, *zones])
        if worker is not None:
            await worker.__aenter__()
        try:
            handle = await client.start(wf, value, id=run_id)
            if no_wait:
                out.print(handle.id)
                return 0
            err.print(f"run [bold]{handle.id}[/] started")
            # A link into an engine that stops with this command would be dead on arrival.
            live_ui = session.ui_url if session.started_server is None else None
            return await _follow(client, handle, live_ui)
        finally:
            if worker is not None:
                await worker.shutdown()


async def _follow(client: Client, handle: Any, ui_url: str | None) -> int:
    from tether.errors import RunCancelled, RunFailed

    shown: dict[str, tuple[str, int]] = {}
    result_task = asyncio.ensure_future(handle.result())
    while True:
        done = await asyncio.wait({result_task}, timeout=0.3)
        detail = await handle.describe()
        for s in detail.steps:
            key = (s.status, s.attempts)
            if shown.get(s.id + s.kind) != key and s.status != "scheduled":
                shown[s.id + s.kind] = key
                if s.status != "running" or s.attempts > 1:
                    err.print(_render.step_line(s))
        if detail.workflow_task_error and not result_task.done():
            result_task.cancel()
            raise UsageError(_determinism_message(handle.id, detail.workflow_task_error))
        if done[0]:
            break
    try:
        result = result_task.result()
    except (RunFailed, RunCancelled) as exc:
        err.print(f"[red]✗[/] {escape(str(exc))}")  # messages may hold brackets: 'tether[local]'
        return 1
    err.print(f"[green]✓[/] run {handle.id} completed")
    out.print(_render.to_json(_plain(result)), soft_wrap=True, markup=False)
    where = f"tether show {handle.id}"
    if ui_url:
        where += f"  ·  {ui_url}/namespaces/{client.connection.namespace}/workflows/{handle.id}"
    else:
        where += "  ·  `tether dev APP` serves Studio and the Temporal Web UI to browse it"
    err.print(f"[dim]see it: {where}[/]")
    return 0


def _plain(value: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(Any).dump_python(value, mode="json")


def _determinism_message(run_id: str, error: str) -> str:
    if error.startswith(("payload was encrypted with key", "payload encrypted with key", "large payload")):
        return (f"run {run_id} is paused: {error.splitlines()[0]}; it resumes, with nothing lost, "
                "once a worker has that key")
    return (
        f"run {run_id} is paused: its workflow code failed ({error.splitlines()[0]}). "
        "Workflow code is replayed after crashes, so it must be deterministic: no I/O, "
        "clock or randomness of its own. Move such work into a @tether.step and use "
        "tether.now()/tether.uuid4()/tether.sleep(); the run resumes when fixed code is "
        f"deployed, or stop it with `tether cancel {run_id}`"
    )


@app.command()
def worker(
    app_spec: Annotated[str, typer.Argument(metavar="APP", help="Module or .py file with workflows.")],
    queues: Annotated[str | None, typer.Option(help="Comma-separated: 'main' and/or zone names.")] = None,
    address: Address = None, namespace: Namespace = None, task_queue: Queue = None,
    tls_cert: TlsCert = None, tls_key: TlsKey = None, tls_ca: TlsCa = None, api_key: ApiKey = None,
    key_file: KeyFile = None, allow_plaintext: AllowPlaintext = False,
    metrics_port: MetricsPort = None, capture_content: CaptureContent = None,
) -> None:
    """Run a worker for APP against any Temporal server or cluster."""
    codec = worker_codec(key_file, allow_plaintext=allow_plaintext)  # refuse before importing the app
    telemetry_setup("worker", None, metrics_port, capture_content)
    load_app(app_spec)
    conn = replace(conn_from(address, namespace, task_queue, tls_cert, tls_key, tls_ca, api_key), codec=codec,
                   allow_plaintext=allow_plaintext)
    wanted = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    asyncio.run(_worker(conn, wanted))


async def _worker(conn: Connection, queues: list[str] | None) -> None:
    client = Client(await conn.connect(), conn)
    w = Worker(client, queues=queues)
    ring = getattr(conn.codec, "keyring", None)
    sealed = f"payload key {ring.primary.id}" if ring else "[yellow]payloads NOT encrypted[/]"
    err.print(f"worker on {conn.address} namespace {conn.namespace}: {', '.join(w.task_queues)}; {sealed}")
    await _until_signal(w.run())


@app.command()
def runs(
    workflow: Annotated[str | None, typer.Option(help="Only runs of this workflow.")] = None,
    status: Annotated[str | None, typer.Option(help="running, completed, failed, cancelled…")] = None,
    limit: Annotated[int, typer.Option(help="How many.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state_dir: StateDir = Path(".tether"),
    address: Address = None, namespace: Namespace = None, task_queue: Queue = None,
    tls_cert: TlsCert = None, tls_key: TlsKey = None, tls_ca: TlsCa = None, api_key: ApiKey = None,
) -> None:
    """List recent runs with their status."""
    conn = conn_from(address, namespace, task_queue, tls_cert, tls_key, tls_ca, api_key)

    async def go() -> None:
        async with open_session(conn, state_dir) as s:
            found = await s.client.list_runs(workflow=workflow, status=status, limit=limit)
        if as_json:
            out.print(_render.to_json([r.__dict__ for r in found]), soft_wrap=True, markup=False)
        elif not found:
            out.print("no runs yet")
        else:
            out.print(_render.runs_table(found))

    asyncio.run(go())


@app.command()
def show(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state_dir: StateDir = Path(".tether"),
    address: Address = None, namespace: Namespace = None, task_queue: Queue = None,
    tls_cert: TlsCert = None, tls_key: TlsKey = None, tls_ca: TlsCa = None, api_key: ApiKey = None,
) -> None:
    """Show a run: input, result or error, and its steps with attempts and durations."""
    conn = conn_from(address, namespace, task_queue, tls_cert, tls_key, tls_ca, api_key)

    async def go() -> None:
        async with open_session(conn, state_dir) as s:
            detail = await s.client.get(run_id).describe()
        if as_json:
            data = dict(detail.__dict__, steps=[dict(x.__dict__, duration=x.duration) for x in detail.steps],
                        model_usage=llm_report.run_usage(detail.steps).model_dump())
            out.print(_render.to_json(data), soft_wrap=True, markup=False)
        else:
            _render.print_run(out, detail)

    asyncio.run(go())


@app.command()
def cancel(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID")],
    state_dir: StateDir = Path(".tether"),
    address: Address = None, namespace: Namespace = None, task_queue: Queue = None,
    tls_cert: TlsCert = None, tls_key: TlsKey = None, tls_ca: TlsCa = None, api_key: ApiKey = None,
) -> None:
    """Cancel a run: steps in flight are cancelled and the run ends as cancelled."""
    conn = conn_from(address, namespace, task_queue, tls_cert, tls_key, tls_ca, api_key)

    async def go() -> None:
        async with open_session(conn, state_dir) as s:
            await s.client.get(run_id).cancel()
        out.print(f"cancellation requested for {run_id}")

    asyncio.run(go())


