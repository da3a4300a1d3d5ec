"""`tether runs`: list runs, show one, cancel or terminate it (`trace` is in `tether.cli.observe`).

`tether runs` alone lists runs; `tether show|cancel|terminate RUN_ID` are shortcuts kept from
before the group existed (hidden from `tether --help`, named in its epilog).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from tether import _render
from tether.cli._common import CONNECTS, StateDir, app, connection, out
from tether.engine.session import open_session
from tether.llm import _report as llm_report

runs_app = typer.Typer(help="Runs: list them, show one, cancel, terminate or trace it.", no_args_is_help=False,
                       epilog=CONNECTS)
app.add_typer(runs_app, name="runs", rich_help_panel="Runs")

RunId = Annotated[str, typer.Argument(metavar="RUN_ID")]
Workflow = Annotated[str | None, typer.Option(help="Only runs of this workflow.")]
Status = Annotated[str | None, typer.Option(help="running, completed, failed, cancelled…")]
Limit = Annotated[int, typer.Option(help="How many.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@runs_app.callback(invoke_without_command=True)
def runs(ctx: typer.Context, workflow: Workflow = None, status: Status = None, limit: Limit = 20,
         as_json: Json = False, state_dir: StateDir = Path(".tether")) -> None:
    """Runs: list them (`tether runs` alone does), show one, cancel, terminate or trace it."""
    if ctx.invoked_subcommand is None:
        list_runs(workflow, status, limit, as_json, state_dir)


@runs_app.command("list", epilog=CONNECTS)
def list_runs(workflow: Workflow = None, status: Status = None, limit: Limit = 20, as_json: Json = False,
              state_dir: StateDir = Path(".tether")) -> None:
    """List recent runs with their status."""
    conn = connection()

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


def show(run_id: RunId, as_json: Json = False, state_dir: StateDir = Path(".tether")) -> None:
    """Show a run: input, result or error, and its steps with attempts and durations."""
    conn = connection()

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


def cancel(run_id: RunId, state_dir: StateDir = Path(".tether")) -> None:
    """Cancel a run: steps in flight are cancelled and the run ends as cancelled."""
    conn = connection()

    async def go() -> None:
        async with open_session(conn, state_dir) as s:
            await s.client.get(run_id).cancel()
        out.print(f"cancellation requested for {run_id}")

    asyncio.run(go())


def terminate(
    run_id: RunId,
    reason: Annotated[str, typer.Option(help="Why, kept in the run's history.")] = "terminated from the CLI",
    state_dir: StateDir = Path(".tether"),
) -> None:
    """End a run at once, running none of its code (for a stuck run that cancel cannot reach)."""
    conn = connection()

    async def go() -> None:
        async with open_session(conn, state_dir) as s:
            await s.client.terminate(run_id, reason)
        out.print(f"terminated {run_id}")

    asyncio.run(go())


def register(name: str, command: Callable[..., Any], *, connects: bool = True) -> None:
    """Make `command` both `tether runs NAME` and the shortcut `tether NAME` (hidden from help)."""
    epilog = CONNECTS if connects else None
    runs_app.command(name, epilog=epilog)(command)
    app.command(name, hidden=True, epilog=epilog)(command)


for _name, _command in (("show", show), ("cancel", cancel), ("terminate", terminate)):
    register(_name, _command)
