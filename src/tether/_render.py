"""Terminal rendering of runs, steps and progress for the CLI (rich)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tether import budget
from tether._labels import step_label
from tether.durations import format_duration
from tether.engine.client import RunDetail, RunSummary
from tether.engine.records import StepRecord
from tether.llm import _report as llm_report

STATUS_STYLE = {"completed": "green", "running": "cyan", "failed": "red", "retrying": "yellow",
                "cancelled": "magenta", "terminated": "magenta", "timed out": "red",
                "scheduled": "dim", "waiting": "cyan", "answered": "green", "expired": "red",
                "noted": "blue", "lost": "yellow", "stuck": "bold red"}
MARK = {"completed": "✓", "failed": "✗", "timed out": "✗", "cancelled": "⊘", "retrying": "↻",
        "running": "…", "scheduled": "·", "waiting": "?", "answered": "✓", "expired": "✗", "noted": "✎", "lost": "↻"}


def to_json(value: Any) -> str:
    """Pretty JSON for results and inputs (falls back to str for odd values)."""
    return json.dumps(value, indent=2, default=str, ensure_ascii=False)


def _when(t: datetime | None) -> str:
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def _took(start: datetime | None, end: datetime | None) -> str:
    return format_duration((end - start).total_seconds()) if start and end else "-"


def runs_table(runs: list[RunSummary]) -> Table:
    """The `tether runs` table."""
    table = Table(box=None, header_style="bold")
    why = any(r.stuck for r in runs)
    for col in ("RUN ID", "WORKFLOW", "STATUS", "STARTED", "TOOK", *(["WHY"] if why else [])):
        table.add_column(col, overflow="fold")
    for r in runs:
        style = STATUS_STYLE.get(r.status, "")
        table.add_row(r.id, r.workflow, f"[{style}]{r.status}[/]", _when(r.started_at),
                      _took(r.started_at, r.closed_at), *([escape(r.stuck or "")] if why else []))
    return table


def step_error(s: StepRecord) -> str:
    """The error, or the last failure of a step that was retried."""
    if s.waiting_for:
        return f"waiting for {s.waiting_for}" + (f" ({s.lost})" if s.lost else "")
    if s.lost:
        return s.lost
    if s.error:
        return s.error
    if s.last_failure and s.attempts > 1:
        return f"earlier attempt failed: {s.last_failure}"
    return ""


def steps_table(steps: list[StepRecord]) -> Table:
    """The steps of a run with attempts, durations and errors."""
    table = Table(box=None, header_style="bold")
    for col in ("#", "STEP", "ZONE", "STATUS", "ATTEMPTS", "TOOK", "ERROR"):
        table.add_column(col, overflow="fold")
    for i, s in enumerate(steps, 1):
        style = STATUS_STYLE.get(s.status, "")
        table.add_row(str(i), escape(step_label(s)) if s.kind == "step" else f"{s.name} ({s.kind})",
                      s.zone or "", f"[{style}]{s.status}[/]",
                      str(s.attempts) if s.kind == "step" else "",
                      format_duration(s.duration) if s.duration is not None else "-",
                      step_error(s))
    return table


def print_run(console: Console, run: RunDetail) -> None:
    """The `tether show` view of one run."""
    style = STATUS_STYLE.get(run.status, "")
    console.print(f"[bold]{run.id}[/]  workflow [bold]{run.workflow}[/]  [{style}]{run.status}[/]")
    console.print(f"started {_when(run.started_at)}   took {_took(run.started_at, run.closed_at)}"
                  f"   queue {run.task_queue}")
    console.print("[bold]input[/]", to_json(run.input), highlight=False)
    if run.status == "completed":
        console.print("[bold]result[/]", to_json(run.result), highlight=False)
    if run.error:
        console.print(f"[bold red]error[/] {run.error}", highlight=False)
    if run.stuck:
        console.print(f"[bold red]stuck[/] {escape(run.stuck)}  (end it with `tether terminate {run.id}`)")
    if run.steps:
        console.print(steps_table(run.steps))
    else:
        console.print("[dim]no steps yet[/]")
    models = llm_report.run_usage(run.steps)
    if models.calls:
        console.print(escape(llm_report.usage_line(models)), highlight=False)
    if run.budget:
        used = budget.usage_of(models.calls, models.input_tokens + models.output_tokens, models.cost, run.spent)
        console.print(escape(budget.budget_line(run.budget, used)), highlight=False)


def step_line(s: StepRecord) -> str:
    """One line of live progress for a step that changed state."""
    mark = MARK.get(s.status, "·")
    style = STATUS_STYLE.get(s.status, "")
    took = f" {format_duration(s.duration)}" if s.duration is not None else ""
    tries = f" ({s.attempts} attempts)" if s.attempts > 1 else ""
    zone = f" [dim]@{s.zone}[/]" if s.zone else ""
    err = step_error(s)
    shows_error = s.status in ("retrying", "failed", "timed out", "expired", "waiting", "lost")
    err = f" [dim]{err}[/]" if err and shows_error else ""
    return f"  [{style}]{mark}[/] {escape(step_label(s))}{zone}{took}{tries}{err}"
