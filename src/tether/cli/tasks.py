"""`tether tasks`: list open human tasks, show one, answer it (prompted field by field, or as JSON).

How a task is drawn and how answers are prompted for is in `tether.cli._questions`.
"""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Annotated

import typer

from tether import _render
from tether.cli._common import CONNECTS, StateDir, app, connection, err, out
from tether.cli._questions import parse_json, print_task, prompt_answer, tasks_table
from tether.engine.connection import Connection
from tether.engine.inbox import TaskList
from tether.engine.session import open_session
from tether.human_tasks import HumanTask

tasks_app = typer.Typer(help="Human tasks: list, show and answer them.", no_args_is_help=False, epilog=CONNECTS)
app.add_typer(tasks_app, name="tasks", rich_help_panel="People")

As = Annotated[str | None, typer.Option(
    "--as", help="Whom you answer for; recorded beside your login name (which is what answered_by records).")]


@tasks_app.callback(invoke_without_command=True)
def tasks(
    ctx: typer.Context,
    assignee: Annotated[str | None, typer.Option(help="Only tasks for this person or team.")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only tasks of this run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """List open human tasks: run, question, age, assignee."""
    if ctx.invoked_subcommand is not None:
        return
    conn = connection()

    async def go() -> TaskList:
        async with open_session(conn, state_dir) as s:
            return await s.client.tasks.list(assignee=assignee, run_id=run)

    found = asyncio.run(go())
    if found.unreadable:
        err.print(f"note: {len(found.unreadable)} run(s) with open tasks cannot be read with this "
                  f"process's payload keys: {', '.join(found.unreadable[:5])}")
    if as_json:
        out.print(_render.to_json([t.model_dump(mode="json") for t in found]))
    elif not found:
        out.print("no open tasks")
    else:
        out.print(tasks_table(found))


@tasks_app.command("show", epilog=CONNECTS)
def show_task(
    task_id: Annotated[str, typer.Argument(metavar="TASK_ID")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """Show one task: its question, context, answer schema, and who answered it."""
    conn = connection()
    task = asyncio.run(_get(conn, state_dir, task_id))
    if as_json:
        out.print(_render.to_json(task.model_dump(mode="json")))
        return
    print_task(task)


async def _get(conn: Connection, state_dir: Path, task_id: str) -> HumanTask:
    async with open_session(conn, state_dir) as s:
        return await s.client.tasks.get(task_id)


@tasks_app.command("answer", epilog=CONNECTS)
def answer_task(
    task_id: Annotated[str, typer.Argument(metavar="TASK_ID")],
    answer_json: Annotated[str | None, typer.Option(
        "--json", help="The answer as JSON, or @file.json; without it you are prompted.")] = None,
    who: As = None,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """Answer a task; the run validates the answer and goes on (an invalid one changes nothing).

    The answer records your login name (`os:NAME`) as who answered; `--as` adds whom you answer for.
    """
    conn = connection()
    by = f"os:{_login()}"

    async def go() -> HumanTask:
        async with open_session(conn, state_dir) as s:
            if answer_json is not None:
                value = parse_json(answer_json)
            else:
                task = await s.client.tasks.get(task_id)
                if task.status != "open":
                    value = None  # let answer() refuse it with the reason
                else:
                    print_task(task, schema=False)
                    value = prompt_answer(task.answer_schema)
            return await s.client.tasks.answer(task_id, value, by=by, claimed_by=who)

    done = asyncio.run(go())
    out.print(f"[green]✓[/] {done.id} answered by {done.answerer}; run {done.run_id} goes on", highlight=False)


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "cli"
