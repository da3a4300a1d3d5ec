"""`tether replay` and `tether history export`: check recorded runs against the current code before deploying."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tether import settings
from tether.cli._common import CONNECTS, StateDir, app, connection, err, out
from tether.durations import parse_duration
from tether.engine.app import load_app
from tether.engine.replay import ReplayReport, export_history, fetch_histories, read_history_file, replay
from tether.engine.session import open_session
from tether.errors import UsageError

history_app = typer.Typer(no_args_is_help=True, help="Run histories: export them as replay fixtures.")
app.add_typer(history_app, name="history", rich_help_panel="Runs")


@app.command("replay", rich_help_panel="Runs", epilog=CONNECTS)
def replay_command(
    app_spec: Annotated[str, typer.Argument(metavar="APP", help="Module or .py file: the workflows as they are now.")],
    since: Annotated[str | None, typer.Option(help="Replay runs started within this long, e.g. 24h (default).")] = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Replay this run only.")] = None,
    files: Annotated[list[Path] | None, typer.Option(
        "--file", help="Replay a history exported with `tether history export` (repeatable; needs no server).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many runs with --since.")] = 200,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """Replay recorded runs against APP's current code; exit 1 naming each run it would break.

    Closed and running runs are replayed with Temporal's replayer (no step runs again). A run
    that diverges is named with the first step where the new code parts from its history.
    """
    if sum(x is not None for x in (since, run_id, files or None)) > 1:
        raise UsageError("give one of --since, --run or --file")
    if not settings.current().debug:  # each diverging run is one line below, not a traceback
        logging.getLogger("temporalio").setLevel(logging.CRITICAL)
    loaded = load_app(app_spec)
    window = parse_duration(since, what="--since") if since else None

    async def go() -> ReplayReport:
        if files:
            return await replay(loaded, [read_history_file(f) for f in files])
        conn = connection()
        async with open_session(conn, state_dir) as s:
            histories = await fetch_histories(s.client, loaded, since=window, run_id=run_id, limit=limit)
            return await replay(loaded, histories, converter=s.client.temporal.data_converter)

    report = asyncio.run(go())
    if not report.outcomes:
        out.print(f"no runs of {app_spec} started within {since or '24h'}: nothing to replay")
        return
    for o in report.outcomes:
        style = "green" if o.compatible else "red"
        out.print(f"[{style}]{escape(o.line())}[/]", soft_wrap=True)
    if report.compatible:
        err.print(f"[green]✓[/] {escape(report.summary())}")
        return
    err.print(f"[bold red]error:[/] {escape(report.summary())}", soft_wrap=True)
    raise typer.Exit(1)


@history_app.command("export", epilog=CONNECTS)
def export(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID")],
    state_dir: StateDir = Path(".tether"),
) -> None:
    """Print a run's history as JSON (payloads stay encrypted): `tether history export ID > h.json`."""
    conn = connection()

    async def go() -> str:
        async with open_session(conn, state_dir) as s:
            return await export_history(s.client, run_id)

    sys.stdout.write(asyncio.run(go()) + "\n")  # as is: no console markup or emoji codes in a fixture
