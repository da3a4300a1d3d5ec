"""How a human task reads in the terminal: the task table, one task with its question and
context, and prompts for an answer generated from the answer's JSON schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from rich.table import Table

from tether import _render
from tether.cli._common import err, out, read_json
from tether.durations import format_duration
from tether.human import HumanTask


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


def parse_json(raw: str) -> Any:
    """An answer given as JSON text, or @file.json."""
    return read_json(raw, option="--json", what="answer", hint=" (strings need quotes: --json '\"yes\"')")



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
    return parse_json(raw)
