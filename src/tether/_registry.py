"""Process-wide registry of steps and workflows, filled by the decorators at import time."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tether import _runtime
from tether.errors import UsageError

if TYPE_CHECKING:
    from tether.step import Step
    from tether.workflow import Workflow

steps: dict[str, Step[..., Any]] = {}
workflows: dict[str, Workflow[..., Any]] = {}
zones: set[str] = set()
"""Zones named by something other than a step's `runs_on` (e.g. an MCP server's zone)."""


_definer: Callable[[Workflow[..., Any]], Any] | None = None


def use_definer(definer: Callable[[Workflow[..., Any]], Any]) -> None:
    """Let the engine generate each workflow's definition as it is decorated (`tether.engine`)."""
    global _definer
    _definer = definer


def define(wf: Workflow[..., Any]) -> Any:
    """The engine's definition of `wf` (its Temporal workflow class), or None without an engine.

    Made when the workflow is decorated, also inside the engine's sandbox: the sandbox
    re-imports the workflow's module for every run and finds the definition there by name.
    """
    return _definer(wf) if _definer is not None else None


def _in_sandbox() -> bool:
    # Temporal re-imports workflow modules inside its sandbox for every run; those
    # re-imports must not replace the real registrations made at import time.
    return _runtime.engine().in_sandbox()


def register_step(step: Step[..., Any]) -> None:
    """Record a step by name; two different functions may not share a name."""
    if _in_sandbox():
        return
    existing = steps.get(step.name)
    if existing is not None and _origin(existing.fn) != _origin(step.fn):
        raise UsageError(
            f"two steps are named {step.name!r} ({_origin(existing.fn)} and {_origin(step.fn)}); "
            "give one of them another name with @step(name=...)"
        )
    steps[step.name] = step


def register_workflow(wf: Workflow[..., Any]) -> None:
    """Record a workflow by name; two different functions may not share a name."""
    if _in_sandbox():
        return
    existing = workflows.get(wf.name)
    if existing is not None and _origin(existing.fn) != _origin(wf.fn):
        raise UsageError(
            f"two workflows are named {wf.name!r} ({_origin(existing.fn)} and {_origin(wf.fn)}); "
            "give one of them another name with @workflow(name=...)"
        )
    workflows[wf.name] = wf


def declare_zone(zone: str) -> None:
    """Record a zone that workers must serve (so `tether dev` starts a worker for it)."""
    if not _in_sandbox():
        zones.add(zone)


def _origin(fn: object) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"
