"""`tether.testing.replay`: the pytest form of `tether replay APP --file h.json`.

Runs in test processes; needs no server (the history file holds the run).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from types import ModuleType

from tether.engine.app import App, load_app
from tether.engine.replay import ReplayIncompatible, ReplayReport, read_history_file
from tether.engine.replay import replay as replay_histories


def replay(app: str | ModuleType | App, *histories: str | Path) -> ReplayReport:
    """Replay exported histories against `app`'s current code; raise if any run would break.

    Make fixtures with `tether history export RUN_ID > tests/histories/h.json`. Works in sync
    and async tests alike (the replay runs on a thread of its own).

    Args:
        app: The app as `tether replay` takes it (a module name or .py path), or its module.
        histories: History files.

    Raises:
        ReplayIncompatible: Names each run that diverges, the step where, and the fix.

    Example:
        >>> def test_deploy_keeps_running_invoices_working():
        ...     tether.testing.replay("billing.workflows", "tests/histories/nightly.json")
    """
    loaded = app if isinstance(app, App) else load_app(app.__name__ if isinstance(app, ModuleType) else app)
    files = [read_history_file(h) for h in histories]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        report = pool.submit(asyncio.run, replay_histories(loaded, files)).result()
    if not report.compatible:
        raise ReplayIncompatible(report)
    return report


__all__ = ["ReplayIncompatible", "replay"]
