"""`tether schedules`: start runs on a cron or an interval (Temporal's own Schedules)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from tether import _render
from tether.cli._common import CONNECTS, StateDir, app, connection, out, read_input
from tether.engine.app import load_app, split_target
from tether.engine.client import Client, resolve_workflow
from tether.engine.connection import Connection
from tether.engine.schedules import ScheduleInfo
from tether.engine.session import open_session
from tether.errors import UnknownWorkflow, UsageError

schedules_app = typer.Typer(no_args_is_help=True, help="Start runs on a cron or an interval (Temporal Schedules).")
app.add_typer(schedules_app, name="schedules", rich_help_panel="Runs")

T = TypeVar("T")
ScheduleId = Annotated[str, typer.Argument(metavar="SCHEDULE_ID")]


def _with_client(conn: Connection, state_dir: Path, op: Callable[[Client], Awaitable[T]]) -> T:
    async def go() -> T:
        async with open_session(conn, state_dir) as s:
            return await op(s.client)

    return asyncio.run(go())


@schedules_app.command("create", epilog=CONNECTS)
def create(
    target: Annotated[str, typer.Argument(metavar="APP:WORKFLOW", help="e.g. examples/invoice.py:nightly_batch")],
    cron: Annotated[str | None, typer.Option(help="Cron expression, UTC, e.g. '0 9 * * MON-FRI'.")] = None,
    every: Annotated[str | None, typer.Option(help="Interval instead of a cron, e.g. 1h, 15m.")] = None,
    input: Annotated[str | None, typer.Option("--input", "-i", help="Input as JSON, or @file.json.")] = None,
    schedule_id: Annotated[str | None, typer.Option("--id", help="Schedule id (default: the workflow's name).")] = None,
    overlap: Annotated[str, typer.Option(
        help="When the previous run is still going: skip, buffer (one start waits) or allow.")] = "skip",
    catchup: Annotated[str | None, typer.Option(
        help="How late a start missed while the engine was down may still be made up, e.g. 1h.")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """Create a schedule; a bad cron, interval or input is refused and creates nothing."""
    spec, name = split_target(target)
    if name is None:
        raise UsageError(f"name the workflow to schedule: {target}:WORKFLOW")
    loaded = load_app(spec)
    if name not in loaded.workflows:
        raise UnknownWorkflow(name, list(loaded.workflows))
    wf = resolve_workflow(name)
    value = read_input(input)
    wf.validate_input(value)  # refuse before touching any server
    conn = connection()
    info = _with_client(conn, state_dir, lambda c: c.schedules.create(
        wf, value, cron=cron, every=every, id=schedule_id, overlap=overlap,  # type: ignore[arg-type]
        catchup=catchup, paused=paused))
    nxt = _when(info.next_runs[0]) if info.next_runs else "-"
    out.print(f"created schedule {info.id}: {info.workflow} {info.when}; next run {nxt}"
              + (" (paused)" if info.paused else ""))


@schedules_app.command("list", epilog=CONNECTS)
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """List schedules with their next and last runs."""
    conn = connection()
    found = _with_client(conn, state_dir, lambda c: c.schedules.list())
    if as_json:
        out.print(_render.to_json([asdict(s) for s in found]), soft_wrap=True, markup=False)
    elif not found:
        out.print("no schedules yet: `tether schedules create APP:WORKFLOW --cron '0 9 * * MON-FRI'`")
    else:
        out.print(schedules_table(found))


@schedules_app.command("describe", epilog=CONNECTS)
def describe(
    schedule_id: ScheduleId,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """Show one schedule: timing, policy, state, next runs and the runs it started lately."""
    conn = connection()
    info = _with_client(conn, state_dir, lambda c: c.schedules.describe(schedule_id))
    if as_json:
        out.print(_render.to_json(asdict(info)), soft_wrap=True, markup=False)
        return
    state = "paused" if info.paused else "active"
    out.print(f"[bold]{escape(info.id)}[/]  {escape(info.workflow)}  {escape(info.when)}  {state}"
              + (f" ({escape(info.note)})" if info.note else ""))
    catchup = f", catch up missed starts for {info.catchup}" if info.catchup else ""
    out.print(f"  overlap {info.overlap or 'skip'}{catchup}")
    out.print("  next runs   " + (", ".join(_when(t) for t in info.next_runs[:5]) or "-"))
    for r in reversed(info.recent_runs):
        out.print(f"  ran {_when(r.started_at)}  {escape(r.run_id)}")


def _simple(verb: str, doc: str, op: Callable[[Client, str], Awaitable[Any]], said: str) -> None:
    def command(
        schedule_id: ScheduleId,
        state_dir: StateDir = Path(".tether"),
    ) -> None:
        conn = connection()
        _with_client(conn, state_dir, lambda c: op(c, schedule_id))
        out.print(said.format(id=schedule_id))

    command.__doc__ = doc
    schedules_app.command(verb, epilog=CONNECTS)(command)


_simple("pause", "Stop starting runs until `unpause` (runs in flight go on).",
        lambda c, i: c.schedules.pause(i), "paused {id}")
_simple("unpause", "Start runs again from the next due time.",
        lambda c, i: c.schedules.unpause(i), "unpaused {id}")
_simple("trigger", "Start one run now (paused or not; the overlap policy applies).",
        lambda c, i: c.schedules.trigger(i), "triggered {id}: a run starts now")
_simple("delete", "Delete a schedule; runs it started go on.",
        lambda c, i: c.schedules.delete(i), "deleted {id}")


def schedules_table(found: list[ScheduleInfo]) -> Table:
    """The `tether schedules list` table."""
    table = Table(box=None, header_style="bold")
    for col in ("SCHEDULE", "WORKFLOW", "WHEN", "STATE", "NEXT RUN", "LAST RUN"):
        table.add_column(col, overflow="fold")
    for s in found:
        last = s.last_run
        table.add_row(escape(s.id), escape(s.workflow), escape(s.when),
                      "[yellow]paused[/]" if s.paused else "[green]active[/]",
                      _when(s.next_runs[0]) if s.next_runs and not s.paused else "-",
                      f"{_when(last.started_at)} {escape(last.run_id)}" if last else "-")
    return table


def _when(t: datetime) -> str:
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S")
