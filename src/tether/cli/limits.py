"""`tether limits APP`: the rate limits APP declares, with each key's use and cooldown as the engine sees them.

Budgets are per run (`tether show`), so they are not listed here.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from tether import _render
from tether.cli._common import CONNECTS, StateDir, app, connection, out
from tether.engine.app import load_app
from tether.engine.limits import RATE, KeyRow, key_rows
from tether.engine.session import open_session


@app.command("limits", epilog=CONNECTS, rich_help_panel="Runs")
def limits_command(
    app_spec: Annotated[str, typer.Argument(metavar="APP", help="Module or .py file that declares the limits.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """List APP's rate limits: keys, rates, concurrency, current use and cooldowns."""
    loaded = load_app(app_spec)
    conn = connection()

    async def go() -> None:
        async with open_session(conn, state_dir) as s:
            rows = await key_rows(s.client.temporal, s.client.connection.namespace,
                                  s.client.connection.task_queue, list(loaded.steps.values()))
        if as_json:
            out.print(_render.to_json([_as_dict(r) for r in rows]), soft_wrap=True, markup=False)
        elif not rows:
            out.print(f"{app_spec} declares no rate limits (tether.llm.rate_limit, @tether.step(rate_limit=...))")
        else:
            out.print(_table(rows))

    asyncio.run(go())


def _table(rows: list[KeyRow]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("KEY", "ZONE", "FOR", "RATE", "AT ONCE", "WORKERS", "WAITING", "STARTED/S", "COOLDOWN"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(escape(r.key), r.zone or "main", escape(r.used_by),
                      f"{r.limit.per_second:g}/s" if r.limit.per_second else "-",
                      f"{r.limit.max_concurrent} per worker" if r.limit.max_concurrent else "-",
                      str(r.state.workers), str(r.state.backlog), f"{r.state.dispatch_rate:.1f}",
                      escape(cooldown_text(r)))
    return table


def cooldown_text(r: KeyRow) -> str:
    """The cooldown in words: "until 12:00:03 (2.1s left): HTTP 429 …", or "-"."""
    until = r.state.cooling_until
    if until is None:
        if r.state.override is not None and not r.state.reason.startswith(RATE):
            # set by someone else, e.g. an operator with the temporal CLI
            return f"rate set to {r.state.override:g}/s on the server ({r.state.reason or 'no reason given'})"
        return "-"
    left = (until - datetime.now(UTC)).total_seconds()
    why = r.state.reason.split(";", 1)[1].strip() if ";" in r.state.reason else ""
    when = until.astimezone().strftime("%H:%M:%S")
    status = f"{left:.1f}s left" if left > 0 else "over, lifted by the next worker look"
    return f"until {when} ({status})" + (f": {why}" if why else "")


def _as_dict(r: KeyRow) -> dict[str, Any]:
    s = r.state
    return {"key": r.key, "zone": r.zone or "main", "for": r.used_by, "queue": s.queue,
            "per_second": r.limit.per_second, "max_concurrent_per_worker": r.limit.max_concurrent,
            "workers": s.workers, "waiting": s.backlog, "started_per_second": s.dispatch_rate,
            "added_per_second": s.add_rate, "cooling_until": s.cooling_until.isoformat() if s.cooling_until else None,
            "server_rate_override": s.override, "reason": s.reason}
