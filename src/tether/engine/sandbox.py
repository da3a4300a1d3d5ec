"""Temporal's workflow sandbox as tether configures it, and its refusals told in one line.

Runs in workers. Workflow code runs in Temporal's determinism sandbox: for every run the
workflow's module is imported afresh (so its module globals are new each run: patching
them from a test or from step code does not reach workflow code), and modules that touch
I/O, clocks or threads at import time are refused. tether, pydantic and the modules a
workflow lists in `@tether.workflow(passthrough=[...])` are passed through: imported once,
shared with the rest of the worker.
"""

from __future__ import annotations

import ast
import linecache
import sysconfig
import traceback
from collections.abc import Iterable
from pathlib import Path

from temporalio.worker.workflow_sandbox import (
    RestrictedWorkflowAccessError,
    SandboxedWorkflowRunner,
    SandboxRestrictions,
)

from tether.errors import UsageError

PASSTHROUGH = ("tether", "pydantic", "pydantic_core", "annotated_types", "rich", "typer", "opentelemetry")
"""Modules every workflow shares with its worker instead of re-importing them per run."""


def sandbox_runner(passthrough: Iterable[str] = ()) -> SandboxedWorkflowRunner:
    """Temporal's determinism sandbox, with tether, its pure dependencies and `passthrough` passed through."""
    modules = dict.fromkeys([*PASSTHROUGH, *passthrough])
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules))


def explain(error: BaseException) -> UsageError | None:
    """A one-line `UsageError` for a workflow the sandbox refused to load, or None if it was not that.

    Temporal reports it as `RuntimeError: Failed validating workflow X` with the cause
    (which module touched what) buried in the chain; this names the line of the user's code
    that triggered it and what to do.
    """
    if not str(error).startswith(_FAILED) or error.__cause__ is None:
        return None
    workflow = str(error).removeprefix(_FAILED).strip()
    restricted = _cause(error)
    if restricted is None:  # the module raised something else while being imported
        cause = error.__cause__
        where = _user_line(cause)
        at = f" at {where[0]}:{where[1]} `{where[2]}`" if where else ""
        return UsageError(f"workflow {workflow!r} cannot load in Temporal's workflow sandbox: importing its "
                          f"module raised {type(cause).__name__}: {cause}{at}")
    touched = restricted.qualified_name.removesuffix(".__mro_entries__").removesuffix(".__call__")
    where = _user_line(restricted)
    if where is None:
        return UsageError(f"workflow {workflow!r} cannot load in Temporal's workflow sandbox: its module touches "
                          f"{touched} at import time; move that code into a step")
    path, line, code = where
    module = _imported_module(code)
    if module is None:
        return UsageError(f"workflow {workflow!r} cannot load in Temporal's workflow sandbox: {path}:{line} "
                          f"`{code}` touches {touched} at import time; move it into a step (workflow modules are "
                          f"re-imported for every run)")
    return UsageError(f"workflow {workflow!r} cannot load in Temporal's workflow sandbox: {path}:{line} `{code}` "
                      f"imports a module that touches {touched}; import {module} inside the step that uses it, "
                      f"or pass it through: @tether.workflow(passthrough=[{module!r}])")


_FAILED = "Failed validating workflow "


def _cause(error: BaseException) -> RestrictedWorkflowAccessError | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, RestrictedWorkflowAccessError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _user_line(error: BaseException) -> tuple[str, int, str] | None:
    """The deepest frame of the traceback in the user's own code: (file, line number, source)."""
    found = None
    for frame in traceback.extract_tb(error.__traceback__):
        if _is_user_file(frame.filename) and frame.lineno is not None:
            code = (frame.line or linecache.getline(frame.filename, frame.lineno)).strip()
            found = (_short(frame.filename), frame.lineno, code)
    return found


_LIBRARY_ROOTS = tuple({str(Path(p).resolve()) for key in ("stdlib", "platstdlib", "purelib", "platlib")
                        if (p := sysconfig.get_paths().get(key))})
_TETHER_ROOT = str(Path(__file__).resolve().parents[1])


def _is_user_file(filename: str) -> bool:
    if filename.startswith("<"):
        return False
    resolved = str(Path(filename).resolve())
    return not resolved.startswith((*_LIBRARY_ROOTS, _TETHER_ROOT))


def _short(filename: str) -> str:
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd()))
    except ValueError:
        return filename


def _imported_module(code: str) -> str | None:
    """The top-level module an import statement imports (`httpx` for `from httpx import Client`)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    node = tree.body[0] if tree.body else None
    if isinstance(node, ast.Import):
        return node.names[0].name.split(".")[0]
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return node.module.split(".")[0]
    return None
