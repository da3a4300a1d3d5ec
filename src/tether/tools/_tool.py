"""Tools an agent can call: any `@tether.step` (or plain function) with a name, a description
and a JSON schema of its arguments.

Definitions are made at import time (like steps); `check` and `run` execute in workflow code
(validation is deterministic, the call itself is the step, scheduled in its zone).
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from pydantic_core import to_jsonable_python

from tether._sensitive import KIND
from tether.durations import Duration, parse_duration
from tether.errors import UsageError
from tether.llm._types import ToolSpec
from tether.step import Step, step

_NAME_OK = re.compile(r"[^A-Za-z0-9_-]")
_ARG = re.compile(r"^(?: {4}|\t)(\w+)(?:\s*\([^)]*\))?:\s*(.*)$")  # "    name (type): text"
_SECTIONS = ("Args:", "Arguments:", "Returns:", "Raises:", "Example:", "Examples:", "Yields:", "Attributes:")


class InvalidArguments(Exception):
    """A model's arguments for a tool failed its schema; the message goes back to the model."""


class Tool:
    """A tool an agent may call. Subclasses say how arguments are checked and how the call runs.

    Attributes:
        name: The name the model calls it by.
        description: What it does, for the model.
        parameters: JSON schema of its arguments (an object).
        needs_approval: Whether a person must approve each call before it runs.
        approver: Who is asked to approve (free text: a person or team).
        approval_timeout: How long to wait for the approval (None: forever); no answer refuses.
        kind: "function" (a step) or "extension" (an MCP server's tool), for traces.
    """

    kind = "function"

    def __init__(self, name: str, *, description: str, parameters: dict[str, Any], needs_approval: bool = False,
                 approver: str | None = None, approval_timeout: Duration | None = None) -> None:
        self.name = tool_name(name)
        self.description = description
        self.parameters = parameters
        self.needs_approval = needs_approval
        self.approver = approver
        self.approval_timeout = approval_timeout
        if approval_timeout is not None:
            parse_duration(approval_timeout, what="approval_timeout")

    @property
    def spec(self) -> ToolSpec:
        """What the model is told about the tool."""
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def check(self, arguments: dict[str, Any]) -> Any:
        """Validate a model's arguments; raise `InvalidArguments` with a message for the model."""
        return arguments

    async def run(self, checked: Any) -> tuple[str, bool]:
        """Run the call with checked arguments; return (result text for the model, is_error)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<tether tool {self.name!r}>"


@runtime_checkable
class Toolset(Protocol):
    """Something that provides tools when an agent run starts (e.g. an MCP server)."""

    async def tools(self) -> list[Tool]:
        """The tools, discovered in workflow code (durably, e.g. through a step)."""
        ...


class StepTool(Tool):
    """A `@tether.step` as a tool: each call is the step, with its retries, timeout and zone."""

    def __init__(self, s: Step[..., Any], *, name: str | None = None, description: str | None = None,
                 needs_approval: bool = False, approver: str | None = None,
                 approval_timeout: Duration | None = None) -> None:
        self.step = s
        summary, arg_docs = parse_docstring(inspect.getdoc(s.fn) or "")
        self.args_model = _args_model(s, arg_docs)
        schema = self.args_model.model_json_schema()
        schema.pop("title", None)
        super().__init__(name or s.name, description=description or summary, parameters=schema,
                         needs_approval=needs_approval, approver=approver, approval_timeout=approval_timeout)

    def check(self, arguments: dict[str, Any]) -> Any:
        try:
            model = self.args_model.model_validate(arguments)
        except ValidationError as exc:
            raise InvalidArguments(_error_text(exc)) from None
        return {name: getattr(model, name) for name in type(model).model_fields}

    async def run(self, checked: Any) -> tuple[str, bool]:
        result = self.step(**checked)
        if inspect.isawaitable(result):
            result = await result
        return render_result(result), False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.step(*args, **kwargs)


def _args_model(s: Step[..., Any], docs: dict[str, str]) -> type[BaseModel]:
    from pydantic import Field

    fields: dict[str, Any] = {}
    try:  # with Annotated[...] constraints (patterns, lengths): they go into the schema and the grammar
        hints = typing.get_type_hints(s.fn, include_extras=True)
    except Exception:
        hints = s.hints
    for p in s.signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise UsageError(f"step {s.name!r} cannot be a tool: *args/**kwargs have no schema")
        hint = hints.get(p.name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (hint, Field(default, description=docs.get(p.name)))
    try:
        return create_model(f"{tool_name(s.name)}_arguments", __config__=ConfigDict(extra="forbid"),
                            **fields)
    except Exception as exc:
        raise UsageError(f"step {s.name!r} cannot be a tool: its parameters have no JSON schema ({exc})") from None


def _error_text(exc: ValidationError) -> str:
    lines = []
    for e in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in e["loc"])
        lines.append(f"{where}: {e['msg']}" if where else e["msg"])
    more = f" (and {exc.error_count() - 5} more)" if exc.error_count() > 5 else ""
    return "; ".join(lines) + more


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(summary, {arg: description}) from a Google-style docstring."""
    summary: list[str] = []
    args: dict[str, str] = {}
    section = ""
    current = ""
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped in _SECTIONS:
            section = stripped
            continue
        if not section:
            summary.append(stripped)
        elif section in ("Args:", "Arguments:") and stripped:
            entry = _ARG.match(line)
            if entry:
                current = entry.group(1)
                args[current] = entry.group(2).strip()
            elif current:
                args[current] = f"{args[current]} {stripped}"
    return " ".join(" ".join(summary).split()), args


def tool_name(name: str) -> str:
    """A name providers accept: letters, digits, '_' and '-', at most 64 characters."""
    cleaned = _NAME_OK.sub("_", name)[:64]
    if not cleaned:
        raise UsageError("a tool needs a name")
    return cleaned


def render_result(value: Any) -> str:
    """A tool's result as text for the model: strings as they are, anything else as JSON.

    Sensitive handles become their redacted preview (the value itself never leaves its zone).
    """
    if isinstance(value, str):
        return value
    data = _previews(to_jsonable_python(value, fallback=str))
    return data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)


def _previews(data: Any) -> Any:
    if isinstance(data, dict):
        if data.get("kind") == KIND:
            return f"<{data.get('label', 'value')} (sensitive): {data.get('preview') or 'withheld'}>"
        return {k: _previews(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_previews(v) for v in data]
    return data


def tool(fn: Callable[..., Any] | Step[..., Any] | None = None, /, *, name: str | None = None,
         description: str | None = None, needs_approval: bool = False, approver: str | None = None,
         approval_timeout: Duration | None = None) -> Any:
    """Make a step (or a plain function, which becomes a step) a tool for agents.

    Any `@tether.step` can be given to `Agent(tools=[...])` as it is; use `tool` to rename it,
    describe it, or require a person's approval before each call. Use it at import time
    (module level), like `@step`: a plain function becomes a step every worker must know.

    Args:
        fn: A step or a function. Without it, `tool(...)` returns a decorator.
        name: The name the model sees (default: the step's name).
        description: What the tool does (default: the docstring's summary).
        needs_approval: Ask a person (`tether.confirm`) before each call; a refusal is
            returned to the model as the tool's result.
        approver: Who is asked (shown in `tether tasks`).
        approval_timeout: How long to wait for approval; when it passes, the call is refused.

    Example:
        >>> refund_tool = tether.tool(issue_refund, needs_approval=True, approver="finance")
        >>> agent = tether.Agent(model="local:smollm2", tools=[lookup_order, refund_tool])
    """

    def make(target: Callable[..., Any] | Step[..., Any]) -> StepTool:
        s = target if isinstance(target, Step) else step(target)
        return StepTool(s, name=name, description=description, needs_approval=needs_approval,
                        approver=approver, approval_timeout=approval_timeout)

    return make(fn) if fn is not None else make


def as_tools(items: Sequence[Any]) -> tuple[list[Tool], list[Toolset]]:
    """Split an agent's `tools=[...]` into tools and toolsets (steps and functions become tools)."""
    tools: list[Tool] = []
    sets: list[Toolset] = []
    for item in items:
        if isinstance(item, Tool):
            tools.append(item)
        elif isinstance(item, Toolset):
            sets.append(item)
        elif isinstance(item, Step) or callable(item):
            tools.append(tool(item))
        else:
            raise UsageError(f"tools=[...] takes steps, functions, tether.tool(...) or MCP servers, got {item!r}")
    return tools, sets
