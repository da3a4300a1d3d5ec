"""Load a user's app (a module name or a .py file) and collect what a worker must serve."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tether import _registry
from tether.errors import UsageError
from tether.step import Step
from tether.workflow import Workflow


@dataclass
class App:
    """What an app module provides: tether workflows and steps, plus plain Temporal ones."""

    spec: str
    module: ModuleType
    workflows: dict[str, Workflow[Any, Any]] = field(default_factory=dict)
    steps: dict[str, Step[Any, Any]] = field(default_factory=dict)
    temporal_workflows: list[type] = field(default_factory=list)
    temporal_activities: list[Callable[..., Any]] = field(default_factory=list)

    def files(self) -> list[Path]:
        """The app's source files: its module and the modules it imported from its own folder."""
        main = Path(getattr(self.module, "__file__", "") or "")
        if not main.name:
            return []
        root = main.resolve().parent
        found = {main.resolve()}
        for mod in list(sys.modules.values()):
            path = getattr(mod, "__file__", None)
            if not path or not path.endswith(".py") or "site-packages" in Path(path).parts:
                continue
            resolved = Path(path).resolve()
            if resolved.is_relative_to(root) and not resolved.is_relative_to(Path(sys.prefix).resolve()):
                found.add(resolved)
        return sorted(found)

    def zones(self) -> list[str]:
        """Zones named by the app's steps (and its MCP servers), sorted."""
        return sorted({s.options.runs_on for s in self.steps.values() if s.options.runs_on} | _registry.zones)


def split_target(target: str) -> tuple[str, str | None]:
    """Split "APP:workflow" into its parts (the workflow part may be absent)."""
    app, sep, name = target.rpartition(":")
    if not sep or not app:
        return target, None
    return app, name or None


def load_app(spec: str) -> App:
    """Import `spec` (a dotted module or a path to a .py file) and collect its definitions.

    Raises:
        UsageError: The module cannot be found, or importing it raised.
    """
    module = _import(spec)
    app = App(spec=spec, module=module, workflows=dict(_registry.workflows),
              steps=dict(_registry.steps))
    for value in vars(module).values():
        if inspect.isclass(value) and hasattr(value, "__temporal_workflow_definition"):
            if not value.__name__.startswith("_TetherWorkflow_"):
                app.temporal_workflows.append(value)
        elif callable(value) and hasattr(value, "__temporal_activity_definition"):
            app.temporal_activities.append(value)
    return app


def _import(spec: str) -> ModuleType:
    path = Path(spec)
    if spec.endswith(".py") or path.is_file():
        if not path.is_file():
            raise UsageError(f"app {spec!r} not found: no such file")
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = path.stem
    else:
        name = spec
        if "" not in sys.path and "." not in sys.path:
            sys.path.insert(0, "")
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name == name or (exc.name and name.startswith(exc.name + ".")):
            raise UsageError(f"app {spec!r} not found: no module {name!r} "
                             "(give a module name or a path to a .py file)") from None
        raise UsageError(f"importing app {spec!r} failed: {exc}") from exc
    except UsageError:
        raise
    except Exception as exc:
        raise UsageError(f"importing app {spec!r} failed: {type(exc).__name__}: {exc}") from exc
