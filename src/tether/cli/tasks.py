"""Human-task commands: `tether tasks` (list, show, answer) and `tether serve` (the HTTP API)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tether import _render
from tether.cli._common import (
    Address,
    ApiKey,
    HttpsCert,
    HttpsKey,
    Namespace,
    Queue,
    StateDir,
    TlsCa,
    TlsCert,
    TlsKey,
    Token,
    TokenFile,
    app,
    conn_from,
    err,
    out,
    tokens_from,
)
from tether.durations import format_duration
from tether.engine.connection import Connection
from tether.engine.inbox import TaskList
from tether.engine.session import open_session
from tether.errors import UsageError
from tether.human_tasks import HumanTask

tasks_app = typer.Typer(help="Human tasks: list, show and answer them.", no_args_is_help=False)
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
    address: Address = None, namespace: Namespace = None, task_queue: Queue = None,
    tls_cert: TlsCert = None, tls_key: TlsKey = None, tls_ca: TlsCa = None, api_key: ApiKey = None,
) -> None:
    """List open human tasks: run, question, age, assignee."""
    if ctx.invoked_subcommand is not None:
        return
    conn = conn_from(address, namespace, task_queue, tls_cert, tls_key, tls_ca, api_key)

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


def tasks_table(found: list[HumanTask]) -> Table:
    """The `tether tasks` table."""
    table = Table(box=None, header_style="bold")
    for col in ("TASK", "QUESTION", "AGE", "EXPIRES IN", "ASSIGNEE", "KIND"):
        table.add_column(col, overflow="fold")
    now = datetime.now(UTC)
    for t in found:
        expires = format_duration(max((t.expires_at - now).total_seconds(), 0)) if t.expires_at else "-"
        table.add_row(t.id, _cut(t.question, 70), format_duration(now - t.opened_at), expires,
                      t.assignee or "-", t.kind)
    return table


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


@tasks_app.command("show")
def show_task(
    task_id: Annotated[str, typer.Argument(metavar="TASK_ID")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state_dir: StateDir = Path(".tether"),
    address: Address = None, namespace: Namespace = None, task_queue: Queue = None,
    tls_cert: TlsCert = None, tls_key: TlsKey = None, tls_ca: TlsCa = None, api_key: ApiKey = None,
) -> None:
    """Show one task: its question, context, answer schema, and who answered it."""
    conn = conn_from(address, namespace, task_queue, tls_cert, tls_key, tls_ca, api_key)
    task = asyncio.run(_get(conn, state_dir, task_id))
    if as_json:
        out.print(_render.to_json(task.model_dump(mode="json")))
        return
    print_task(task)


async def _get(conn: Connection, state_dir: Path, task_id: str) -> HumanTask:
    async with open_session(conn, state_dir) as s:
        return await s.client.tasks.get(task_id)


def print_task(t: HumanTask, *, schema: bool = True) -> None:
    """The `tether tasks show` view (without the answer schema before prompts)."""
    style = {"open": "cyan", "answered": "green", "expired": "red"}.get(t.status, "magenta")
    out.print(f"[bold]{t.id}[/]  {t.kind}  [{style}]{t.status}[/]   run {t.run_id} ({t.workflow})")
    out.print(f"opened {_when(t.opened_at)}" + (f"   expires {_when(t.expires_at)}" if t.expires_at else "")
              + (f"   assignee {t.assignee}" if t.assignee else ""))
    out.print(f"[bold]question[/] {t.question}", highlight=False)
    if t.context is not None:
        out.print("[bold]context[/]", _render.to_json(t.context), highlight=False)
    if t.status == "answered":
        out.print(f"[bold]answered[/] by {t.answerer} at {_when(t.answered_at)}", highlight=False)
        out.print("[bold]answer[/]", _render.to_json(t.answer), highlight=False)
    elif t.status == "open" and schema:
        out.print("[bold]answer schema[/]", _render.to_json(t.answer_schema), highlight=False)
        out.print(f"[dim]answer it: tether tasks answer {t.id} --json '...'  (or without --json "
                  "to be prompted)[/]")


def _when(t: datetime | None) -> str:
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S") if t else "-"


@tasks_app.command("answer")
def answer_task(
    task_id: Annotated[str, typer.Argument(metavar="TASK_ID")],
    answer_json: Annotated[str | None, typer.Option(
        "--json", help="The answer as JSON, or @file.json; without it you are prompted.")] = None,
    who: As = None,
    state_dir: StateDir = Path(".tether"),
    address: Address = None, namespace: Namespace = None, task_queue: Queue = None,
    tls_cert: TlsCert = None, tls_key: TlsKey = None, tls_ca: TlsCa = None, api_key: ApiKey = None,
) -> None:
    """Answer a task; the run validates the answer and goes on (an invalid one changes nothing).

    The answer records your login name (`os:NAME`) as who answered; `--as` adds whom you answer for.
    """
    conn = conn_from(address, namespace, task_queue, tls_cert, tls_key, tls_ca, api_key)
    by = f"os:{_login()}"

    async def go() -> HumanTask:
        async with open_session(conn, state_dir) as s:
            if answer_json is not None:
                value = _parse_json(answer_json)
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


def _parse_json(raw: str) -> Any:
    text, source = raw, "--json"
    if raw.startswith("@"):
        try:
            text, source = Path(raw[1:]).read_text(), raw[1:]
        except OSError as exc:
            raise UsageError(f"cannot read answer file {raw[1:]!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column "
                         f"{exc.colno} (strings need quotes: --json '\"yes\"')") from None


# ---- prompts generated from the answer's JSON schema ------------------------------------------


def prompt_answer(schema: dict[str, Any]) -> Any:
    """Ask for an answer field by field, following its JSON schema (JSON text as a fallback)."""
    return _prompt(schema, schema, "answer", required=True)


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root.get("$defs", {}).get(ref.rsplit("/", 1)[1], {}), root)
    return node


def _prompt(node: dict[str, Any], root: dict[str, Any], label: str, *, required: bool) -> Any:
    node = _resolve(node, root)
    options = node.get("oneOf") or node.get("anyOf")
    if options:
        return _prompt_union([_resolve(o, root) for o in options], node, root, label, required)
    kind = node.get("type")
    if kind == "object" and "properties" in node:
        return _prompt_object(node, root)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return _prompt_enum(node, label)
    if kind == "boolean":
        return typer.confirm(_label(node, label), default=node.get("default", False))
    if kind in ("integer", "number", "string"):
        return _prompt_scalar(node, label, kind, required)
    return _prompt_json(node, label, required)


def _label(node: dict[str, Any], label: str) -> str:
    title = node.get("title") or label
    desc = node.get("description")
    return f"{title} ({desc})" if desc else str(title)


def _prompt_object(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    required = set(node.get("required", []))
    value: dict[str, Any] = {}
    for name, prop in node["properties"].items():
        got = _prompt(prop, root, name, required=name in required)
        if got is not _SKIP:
            value[name] = got
    return value


_SKIP: Any = object()


def _prompt_scalar(node: dict[str, Any], label: str, kind: str, required: bool) -> Any:
    default = node.get("default")
    optional = default is None and not required
    text = f"{_label(node, label)}" + (" [optional]" if optional else "")
    while True:
        raw = typer.prompt(text, default="" if optional else default,
                           show_default=not optional and default != "")
        if optional and raw == "":
            return _SKIP
        try:
            return _SCALARS[kind](raw)
        except ValueError:
            err.print(f"{label}: expected {'a whole number' if kind == 'integer' else 'a number'}, "
                      f"got {raw!r}; try again")


_SCALARS: dict[str, Any] = {"integer": int, "number": float, "string": str}


def _prompt_enum(node: dict[str, Any], label: str) -> Any:
    choices = [str(c) for c in node["enum"]]
    while True:
        raw = typer.prompt(f"{_label(node, label)} ({', '.join(choices)})", default=node.get("default"))
        if str(raw) in choices:
            return node["enum"][choices.index(str(raw))]
        err.print(f"{label}: choose one of {', '.join(choices)}")


def _prompt_union(options: list[dict[str, Any]], node: dict[str, Any], root: dict[str, Any],
                  label: str, required: bool) -> Any:
    non_null = [o for o in options if o.get("type") != "null"]
    if len(non_null) == 1:  # Optional[X]
        return _prompt(non_null[0], root, label, required=False) if not required else \
            _prompt(non_null[0], root, label, required=True)
    tag = (node.get("discriminator") or {}).get("propertyName")
    if tag and all("const" in o.get("properties", {}).get(tag, {}) for o in non_null):
        consts = [o["properties"][tag]["const"] for o in non_null]
        pick = _prompt_enum({"enum": consts, "title": tag}, tag)
        return _prompt_object(non_null[consts.index(pick)], root)
    return _prompt_json(node, label, required)


def _prompt_json(node: dict[str, Any], label: str, required: bool) -> Any:
    raw = typer.prompt(f"{_label(node, label)} (JSON)", default="" if not required else None,
                       show_default=False)
    if raw == "" and not required:
        return _SKIP
    return _parse_json(raw)


# ---- the HTTP API -----------------------------------------------------------------------------


@app.command(rich_help_panel="People")
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind; non-loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (Studio's is 7300).")] = 7301,
    token: Token = None, token_file: TokenFile = None,
    https_cert: HttpsCert = None, https_key: HttpsKey = None,
    state_dir: StateDir = Path(".tether"),
    address: Address = None, namespace: Namespace = None, task_queue: Queue = None,
    tls_cert: TlsCert = None, tls_key: TlsKey = None, tls_ca: TlsCa = None, api_key: ApiKey = None,
) -> None:
    """Serve the HTTP API (human tasks: list, read, answer) until Ctrl-C.

    It has Studio's guards: loopback Host check, no cross-site requests, JSON bodies only
    with `Content-Type: application/json`, and a bearer token (TETHER_API_TOKEN or
    --token-file) required when bound beyond loopback.
    """
    from tether.studio.api import check_binding, tls_options
    from tether.studio.api import serve as serve_api

    tokens = tokens_from(ctx, token, token_file)
    check_binding(host, tokens)  # refuse before touching any server
    tls_options(https_cert, https_key)
    conn = conn_from(address, namespace, task_queue, tls_cert, tls_key, tls_ca, api_key)

    async def go() -> None:
        async with open_session(conn, state_dir) as s:
            def ready(url: str) -> None:
                auth = "token required" if tokens else "no token (loopback only)"
                err.print(f"[bold]tether serve[/]  {url}/api/tasks   engine {s.client.connection.address}"
                          f"   {auth}; Ctrl-C stops")

            await serve_api(s.client, host=host, port=port, token=tokens, on_ready=ready,
                            https_cert=https_cert, https_key=https_key)

    with contextlib.suppress(KeyboardInterrupt):  # uvicorn stopped gracefully, then re-raised Ctrl-C
        asyncio.run(go())
    err.print("stopped")
