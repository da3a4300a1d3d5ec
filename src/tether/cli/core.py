"""Core commands: dev (the local engine, a worker and Studio), run (start and follow a run), worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from tether import _render, settings
from tether.cli._common import CONNECTS, Grace, StateDir, app, connection, err, out, read_input
from tether.cli._processes import run_processes
from tether.cli._telemetry import CaptureContent, MetricsPort, telemetry_setup
from tether.cli.keys import KeyFile, use_dev_key
from tether.durations import parse_duration
from tether.engine import liveness
from tether.engine.app import App, load_app, split_target
from tether.engine.client import Client, new_run_id, resolve_workflow
from tether.engine.codec import worker_codec
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer, running_server, stop_running
from tether.engine.session import has_workflow_poller, open_session
from tether.engine.worker import MAIN, Worker
from tether.errors import ServerUnavailable, UsageError


@app.command(rich_help_panel="Runs")
def dev(
    app_spec: Annotated[str | None, typer.Argument(metavar="APP", help="Module or .py file with workflows.")] = None,
    port: Annotated[int, typer.Option(help="gRPC port of the embedded engine.")] = 7233,
    ui_port: Annotated[int | None, typer.Option(help="Web UI port (default: port + 1000).")] = None,
    separate_zones: Annotated[bool, typer.Option(help="Run each zone's steps in its own process.")] = False,
    state_dir: StateDir = Path(".tether"),
    metrics_port: MetricsPort = None, capture_content: CaptureContent = None,
    studio: Annotated[bool, typer.Option("--studio/--no-studio", help="Serve Studio, the web app.")] = True,
    studio_port: Annotated[int, typer.Option(help="Studio's port on 127.0.0.1.")] = 7300,
    grace: Grace = "30s",
    stop: Annotated[bool, typer.Option("--stop", help="Stop the engine left running for this folder.")] = False,
    cache_models: Annotated[bool, typer.Option(
        "--cache-models", help="Answer identical model calls from an encrypted cache in <state dir>/cache "
                               "(development; or TETHER_MODEL_CACHE=FOLDER).")] = False,
    follow: Annotated[bool, typer.Option(
        "--follow/--no-follow", help="Print each new run as it goes: steps, model tokens, progress, its end.")] = True,
) -> None:
    """Start the embedded engine (or reuse it), a worker for APP and Studio; Ctrl-C stops them.

    Steps in flight get --grace to finish; a second Ctrl-C stops at once.
    """
    if cache_models:
        settings.use(model_cache=state_dir / "cache")  # zone workers inherit it through child_env()
    if stop:
        stopped = stop_running(state_dir)
        out.print(f"stopped the engine at {stopped.address}" if stopped else f"no engine runs for {state_dir}/")
        return
    if app_spec is None:
        raise UsageError("name the app to serve: tether dev APP (a module or a .py file)")
    seconds = parse_duration(grace, what="--grace").total_seconds()
    loaded = load_app(app_spec)
    use_dev_key(state_dir)
    telemetry_setup("dev", state_dir, metrics_port, capture_content)  # spans kept in <state dir>/traces.db
    asyncio.run(_dev(loaded, port, ui_port, separate_zones, state_dir,
                     connection(), studio=(loaded.workflows, studio_port) if studio else None,
                     grace=seconds, follow=follow))


async def _dev(loaded: App, port: int, ui_port: int | None, separate: bool,
               state_dir: Path, conn: Connection, *, studio: tuple[dict[str, Any], int] | None = None,
               grace: float = 30.0, follow: bool = True) -> None:
    spec, zones = loaded.spec, loaded.zones()
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
        client = Client(await conn.connect(patient=True), conn)
        queues = [MAIN] if separate else [MAIN, *zones]
        if separate:
            children = [_spawn_zone_worker(spec, z, conn, grace) for z in zones]
        worker = Worker(client, queues=queues, grace=grace)
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
        watch = asyncio.ensure_future(_warn_on_change(loaded.files()))
        runs = asyncio.ensure_future(_follow_runs(client, conn.task_queue)) if follow else None
        try:
            await _until_signal(worker.run(), grace=grace)
        finally:
            watch.cancel()
            if runs is not None:
                runs.cancel()
    finally:
        if web is not None:
            await web.stop()
        for child in children:
            child.terminate()
        for child in children:  # zone workers shut down gracefully on SIGTERM
            try:
                child.wait(grace + 10)
            except subprocess.TimeoutExpired:
                child.kill()
        if server is not None:
            server.stop()
            out.print("stopped")
        else:
            out.print(f"stopped; the engine at {address} keeps running (another `tether dev` started it): "
                      "`tether dev --stop` stops it")


async def _warn_on_change(files: list[Path], every: float = 1.0) -> None:
    """Say once when the app's code changes: new runs replay the new workflow code, but this
    worker's steps keep the code it loaded."""
    def stamps() -> dict[Path, float]:
        return {f: f.stat().st_mtime for f in files if f.exists()}

    before = stamps()
    while True:
        await asyncio.sleep(every)
        now = stamps()
        changed = [f for f in files if now.get(f) != before.get(f)]
        if changed:
            err.print(f"[yellow]{changed[0].name} changed[/]: workflow code is re-read for every run, but steps "
                      "still run the code loaded at start; restart `tether dev` to load it")
            return


def _spawn_zone_worker(spec: str, zone: str, conn: Connection, grace: float) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tether", "worker", spec, "--queues", zone, "--grace", f"{grace:g}s",
           "--address", conn.address, "--namespace", conn.namespace, "--task-queue", conn.task_queue]
    return subprocess.Popen(cmd, env=settings.child_env())  # the same keys, stores and telemetry


async def _until_signal(coro: Any, *, grace: float | None = None) -> None:
    """Run `coro` until SIGINT/SIGTERM. With `grace`, the first signal starts a graceful
    shutdown (said in one line) and a second one cuts it short."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    signals = 0

    def stop() -> None:
        nonlocal signals
        signals += 1
        if grace is not None and signals == 1:
            err.print(f"stopping: taking no new work; {liveness.in_flight()} step attempt(s) in flight have "
                      f"{grace:g}s to finish and report (what still runs then is retried at once "
                      "elsewhere); Ctrl-C again stops now")
        elif grace is not None:
            err.print("stopping now: unfinished step attempts are retried elsewhere once their "
                      "heartbeats lapse")
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


@app.command(rich_help_panel="Runs", epilog=CONNECTS)
def run(
    target: Annotated[str, typer.Argument(metavar="APP:WORKFLOW", help="e.g. examples/invoice.py:process_invoice")],
    input: Annotated[str | None, typer.Option("--input", "-i", help="Input as JSON, or @file.json.")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Print the run id and return at once.")] = False,
    run_id: Annotated[str | None, typer.Option("--id", help="Run id (default: generated); used once.")] = None,
    allow_id_reuse: Annotated[bool, typer.Option(
        "--allow-id-reuse", help="Start even if a finished run had this --id (its work is done again).")] = False,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """Start a run of a workflow, show its steps live and print its result.

    Ctrl-C stops following, not the run: it goes on (or resumes with a worker); the
    message says how to follow or cancel it.
    """
    spec, name = split_target(target)
    if name is None:
        raise UsageError(f"name the workflow to run: {target}:WORKFLOW")
    loaded = load_app(spec)
    wf = resolve_workflow(name) if name in loaded.workflows else _unknown(name, loaded.workflows)
    args_value = read_input(input)
    wf.validate_input(args_value)  # reject before touching any server
    conn = connection()
    if not conn.explicit:  # the embedded engine: runs served here are traced like under `tether dev`
        telemetry_setup("run", state_dir, None, None)
    if run_id is not None and not run_id.strip():
        raise UsageError("--id must not be empty; leave it out to get a generated run id")
    started = _Started()
    try:
        code = asyncio.run(_run(wf, args_value, run_id, no_wait, state_dir, conn, loaded.zones(),
                                allow_id_reuse=allow_id_reuse, started=started))
    except KeyboardInterrupt:
        err.print(started.after_interrupt(spec), soft_wrap=True)
        raise typer.Exit(130) from None
    raise typer.Exit(code)


@dataclass
class _Started:
    """What `tether run` had started when Ctrl-C came, to say what happens to it."""

    run_id: str | None = None
    confirmed: bool = False  # the engine acknowledged the start
    worker_here: bool = False
    engine_here: bool = False

    def after_interrupt(self, spec: str) -> str:
        if self.run_id is None:
            return "interrupted before the run started: nothing was started"
        rid = self.run_id
        if not self.confirmed:
            return (f"interrupted while starting run {rid}: it may have started; check with `tether show {rid}` "
                    f"(cancel it with `tether cancel {rid}`)")
        if self.engine_here:
            goes_on = (f"run {rid} is kept in the embedded engine, which stopped with this command; it resumes "
                       f"where it was when you start `tether dev {spec}`")
        elif self.worker_here:
            goes_on = (f"run {rid} goes on: it is kept by the engine and resumes when a worker serves it "
                       f"(`tether dev {spec}` or `tether worker {spec}`)")
        else:
            goes_on = f"run {rid} goes on (a worker serves it)"
        return (f"stopped following; {goes_on}. Follow it: `tether show {rid}`; cancel it: "
                f"`tether cancel {rid}`")


def _unknown(name: str, workflows: dict[str, Any]) -> Any:
    from tether.errors import UnknownWorkflow

    raise UnknownWorkflow(name, list(workflows))


async def _run(wf: Any, value: Any, run_id: str | None, no_wait: bool, state_dir: Path,
               conn: Connection, zones: list[str], *, allow_id_reuse: bool = False,
               started: _Started | None = None) -> int:
    started = started or _Started()
    if not settings.current().debug:
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
        started.worker_here = worker is not None
        started.engine_here = session.started_server is not None
        try:
            started.run_id = run_id or new_run_id(wf.name)
            handle = await client.start(wf, value, id=started.run_id, allow_id_reuse=allow_id_reuse)
            started.confirmed = True
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
    line = _LiveLine()
    live = asyncio.ensure_future(_live(handle, line)) if settings.current().stream else None
    try:
        while True:
            done = await asyncio.wait({result_task}, timeout=0.3)
            detail = await handle.describe()
            for s in detail.steps:
                key = (s.status, s.attempts)
                if shown.get(s.id + s.kind) != key and s.status != "scheduled":
                    shown[s.id + s.kind] = key
                    if s.status != "running" or s.attempts > 1:
                        line.end()
                        err.print(_render.step_line(s))
            if detail.workflow_task_error and not result_task.done():
                result_task.cancel()
                raise UsageError(_determinism_message(handle.id, detail.workflow_task_error))
            if done[0]:
                break
    finally:
        if live is not None:
            live.cancel()
        line.end()
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


class _LiveLine:
    """The terminal line a model's tokens are being written on, if any."""

    def __init__(self, console: Any = None) -> None:
        self.step: str | None = None
        self.console = console if console is not None else err

    def end(self) -> None:
        if self.step is not None:
            self.console.print()
            self.step = None


async def _live(run: Any, line: _LiveLine) -> None:
    """Print a run's model tokens as they are written and its steps' progress (`tether run`)."""
    try:
        await _print_live(run, line)
    except Exception:
        return


async def _print_live(run: Any, line: _LiveLine, *, prefix: str = "", steps: bool = False) -> None:
    """Print `run`'s live events on `line`'s console: tokens on one line as they come, progress;
    with `steps`, also each step's outcome and the run's end (`tether dev`), each line after `prefix`."""
    show = line.console
    async for ev in run.events():
        if ev.kind == "tokens" and ev.text:
            key = f"{prefix}{ev.step_id}/{ev.attempt}"
            if line.step != key:
                line.end()
                retry = f" (attempt {ev.attempt})" if (ev.attempt or 1) > 1 else ""
                show.print(f"[dim]{prefix}  {escape(ev.model or ev.step or 'model')}{retry} »[/] ", end="")
                line.step = key
            show.print(ev.text, end="", markup=False, highlight=False, soft_wrap=True)
            continue
        if ev.kind.startswith("step.") and line.step is not None and line.step.startswith(f"{prefix}{ev.step_id}/"):
            line.end()
        if ev.kind == "progress":
            line.end()
            share = f" ({ev.done:g}/{ev.total:g})" if ev.done is not None and ev.total else ""
            show.print(f"[dim]{prefix}  … {escape(ev.step or '')}: {escape(ev.text or '')}{share}[/]")
        elif ev.kind == "tokens.withheld":
            line.end()
            show.print(f"[yellow]{prefix}  {escape(ev.text or '')}[/]")
        elif steps and ev.kind in ("step.completed", "step.failed", "step.retrying", "step.timed_out"):
            line.end()
            mark = {"step.completed": "[green]✓[/]", "step.retrying": "[yellow]↻[/]"}.get(ev.kind, "[red]✗[/]")
            why = f": {escape(ev.text)}" if ev.text and ev.kind != "step.completed" else ""
            show.print(f"{prefix}  {mark} {escape(ev.step or '')}{why}")
        elif steps and ev.kind in ("note", "decision", "task.opened", "task.answered"):
            line.end()
            show.print(f"[dim]{prefix}  {escape(ev.kind)}: {escape(ev.text or '')}[/]")
        elif steps and ev.kind.startswith("run."):
            line.end()
            color = "green" if ev.kind == "run.completed" else "yellow" if ev.kind == "run.continued" else "red"
            why = f": {escape(ev.text)}" if ev.text and ev.kind != "run.completed" else ""
            show.print(f"[{color}]{prefix}■ {escape(ev.kind.removeprefix('run.'))}[/]{why}")


FOLLOW_LIVE = 8
"""Runs `tether dev` follows event by event at once; a watcher polls the engine while a step of its
run is in flight, so a batch of hundreds would load the engine. Others get their start and end."""


async def _follow_runs(client: Client, queue: str, *, every: float = 0.5) -> None:
    """`tether dev`: print each run started on `queue` from now on as it goes (its steps, a model's
    tokens as they are written, progress, human tasks and its end), until cancelled. At most
    `FOLLOW_LIVE` runs are followed live at once; the others are listed when they start and end."""
    since = datetime.now(UTC)
    seen: set[str] = set()
    listed: dict[str, str] = {}  # runs not followed live: id -> workflow
    line = _LiveLine(out)
    following: set[asyncio.Task[None]] = set()

    def say(summary: Any, text: str) -> None:
        line.end()
        out.print(f"[bold]{escape(f'[{summary.id}]')} {text}[/]")

    async def follow(summary: Any) -> None:
        prefix = f"[{summary.id}] "
        say(summary, f"▶ {escape(summary.workflow)}")
        with contextlib.suppress(Exception):  # a run this console cannot read is still served
            await _print_live(client.get(summary.id), line, prefix=escape(prefix), steps=True)

    try:
        while True:
            try:
                runs = await client.list_runs(task_queue=queue, limit=200, check_stuck=False)
            except Exception:  # the engine is away for a moment: the worker says so; look again
                runs = []
            for summary in sorted(runs, key=lambda r: r.started_at or since):
                if summary.id in listed and summary.status != "running":
                    del listed[summary.id]
                    say(summary, f"■ {escape(summary.status)}")
                if summary.id in seen or summary.started_at is None or summary.started_at < since:
                    continue
                seen.add(summary.id)
                if len(following) >= FOLLOW_LIVE:
                    listed[summary.id] = summary.workflow
                    say(summary, f"▶ {escape(summary.workflow)}  [dim](not followed live: {FOLLOW_LIVE} runs are; "
                                 f"`tether show {escape(summary.id)}`)[/]")
                    if summary.status != "running":
                        del listed[summary.id]
                        say(summary, f"■ {escape(summary.status)}")
                    continue
                task = asyncio.create_task(follow(summary))
                following.add(task)
                task.add_done_callback(following.discard)
            await asyncio.sleep(every)
    finally:
        for task in following:
            task.cancel()


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


@app.command(rich_help_panel="Runs", epilog=CONNECTS)
def worker(
    app_spec: Annotated[str, typer.Argument(metavar="APP", help="Module or .py file with workflows.")],
    queues: Annotated[str | None, typer.Option(help="Comma-separated: 'main' and/or zone names.")] = None,
    key_file: KeyFile = None,
    metrics_port: MetricsPort = None, capture_content: CaptureContent = None,
    grace: Grace = "30s",
    build_id: Annotated[str | None, typer.Option(
        envvar="TETHER_BUILD_ID", help="This deploy's build: join a worker deployment as this version "
                                       "(`tether deployments promote BUILD_ID` sends new runs to it).")] = None,
    deployment: Annotated[str | None, typer.Option(
        envvar="TETHER_DEPLOYMENT", help="Worker deployment name (default: the task queue).")] = None,
    processes: Annotated[int, typer.Option(
        help="Worker processes to run (one Python process uses one core at a time); default 1.")] = 1,
) -> None:
    """Run a worker for APP against any Temporal server or cluster.

    It waits for the server if it is not up yet. SIGTERM or Ctrl-C stops taking work and
    lets steps in flight finish within --grace; a second Ctrl-C stops at once. Without a payload
    key it refuses to start unless given --allow-plaintext. With --processes N, N workers serve
    the same queues, each in its own process; signals reach every one of them.
    """
    if processes < 1:
        raise UsageError(f"--processes {processes}: give at least 1 (the number of worker processes)")
    if processes > 1 and metrics_port is not None:
        raise UsageError("--metrics-port with --processes: the processes cannot share one port; "
                         "run one `tether worker --metrics-port PORT` per process instead")
    settings.use(**{k: v for k, v in {"build_id": build_id, "deployment": deployment}.items() if v})
    allow_plaintext = settings.current().allow_plaintext
    codec = worker_codec(key_file, allow_plaintext=allow_plaintext)  # refuse before importing the app
    seconds = parse_duration(grace, what="--grace").total_seconds()
    if processes > 1:
        load_app(app_spec)  # a broken app is said once, here, not by every process
        err.print(f"starting {processes} worker processes for {app_spec}")
        raise typer.Exit(run_processes(sys.argv[1:], processes))
    telemetry_setup("worker", None, metrics_port, capture_content)
    load_app(app_spec)
    conn = replace(connection(), codec=codec, allow_plaintext=allow_plaintext)
    wanted = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    asyncio.run(_worker(conn, wanted, seconds))


async def _worker(conn: Connection, queues: list[str] | None, grace: float) -> None:
    client = Client(await _connect_patiently(conn), conn)
    w = Worker(client, queues=queues, grace=grace)
    ring = getattr(conn.codec, "keyring", None)
    sealed = f"payload key {ring.primary.id}" if ring else "[yellow]payloads NOT encrypted[/]"
    version = w.deployment.version if w.deployment else None
    build = f"; build {version.build_id} of deployment {version.deployment_name}" if version else ""
    err.print(f"worker on {conn.address} namespace {conn.namespace}: {', '.join(w.task_queues)}; {sealed}{build}")
    await _until_signal(w.run(), grace=grace)


async def _connect_patiently(conn: Connection) -> Any:
    """Connect, waiting for a server that is not up yet (backoff up to 30 s, said on each try)."""
    delay = 1.0
    while True:
        try:
            return await conn.connect(patient=True)
        except ServerUnavailable as exc:
            err.print(f"waiting for the Temporal server at {conn.address} ({exc.reason or 'unreachable'}); "
                      f"next try in {delay:g}s; Ctrl-C stops")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
