"""Observability commands: `tether runs trace RUN_ID` (a run's span tree; also `tether trace`) and
`tether stats` (figures over recent runs), both read from the local span store that `tether dev` keeps."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tether.cli._common import StateDir, app, out
from tether.cli.runs import register
from tether.durations import parse_duration
from tether.errors import TraceNotFound, UsageError
from tether.observe import _stats, _tree
from tether.observe._setup import STORE_ENV, STORE_FILE
from tether.observe._store import SpanStore

Store = Annotated[Path | None, typer.Option(
    "--store", envvar=STORE_ENV, help="The span store file (default: <state dir>/traces.db).")]


def store_at(state_dir: Path, store: Path | None) -> SpanStore:
    """The span store a command reads."""
    return SpanStore(store or state_dir / STORE_FILE)


def trace(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID")],
    content: Annotated[bool, typer.Option("--content", help="Show prompts and responses (when captured).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the spans as JSON.")] = False,
    state_dir: StateDir = Path(".tether"),
    store: Store = None,
) -> None:
    """Print a run's trace: steps and attempts, models, tokens, cost, retries, notes, errors."""
    st = store_at(state_dir, store)
    if not st.exists:
        raise TraceNotFound(f"no span store at {st.path}: traces are kept there by `tether dev` (or workers "
                            f"started with {STORE_ENV}=PATH); with an OTLP backend, search it for "
                            f"tether.run_id={run_id}", run_id=run_id)
    spans = st.run_spans(run_id)
    if not spans:
        like = st.run_ids_like(run_id[:8])
        hint = f"; stored runs like it: {', '.join(like)}" if like else ""
        raise TraceNotFound(f"no spans of run {run_id!r} in {st.path}{hint} (was it run under `tether dev`?)",
                            run_id=run_id)
    view = _tree.build(spans, run_id)
    if as_json:
        out.print_json(json.dumps([asdict(s) for s in view.walk()], default=str))
        return
    out.print(_tree.render(view, content=content))
    out.print(f"[dim]{_tree.summary(view)}[/]")


register("trace", trace, connects=False)


@app.command(rich_help_panel="Observe")
def stats(
    since: Annotated[str, typer.Option(help="How far back: 30m, 24h, 7d…")] = "24h",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    state_dir: StateDir = Path(".tether"),
    store: Store = None,
) -> None:
    """Print retry rate per step, model latency p50/p95, tokens and cost per workflow, human interventions."""
    window = parse_duration(since, what="--since")
    if window.total_seconds() <= 0:
        raise UsageError("--since must be positive, e.g. --since 24h")
    st = store_at(state_dir, store)
    figures = _stats.compute(st.since(time.time_ns() - int(window.total_seconds() * 1e9)))
    if as_json:
        out.print_json(json.dumps(_as_dict(figures), default=str))
        return
    if figures.empty:
        where = str(st.path) if st.exists else f"{st.path} (no store yet)"
        out.print(f"no runs recorded in the last {since}: the span store {where} is empty. Runs under "
                  f"`tether dev` are recorded there (workers elsewhere: set {STORE_ENV}=PATH).")
        return
    _print_stats(figures, since)


def _as_dict(f: _stats.Stats) -> dict[str, object]:
    return {
        "spans": f.spans,
        "steps": [dict(asdict(s), retries=s.retries, retry_rate=s.retry_rate) for s in f.steps],
        "models": [{"model": m.model, "calls": m.calls, "errors": m.errors, "p50_s": m.percentile(50),
                    "p95_s": m.percentile(95), "input_tokens": m.input_tokens,
                    "output_tokens": m.output_tokens, "cost": m.cost} for m in f.models],
        "workflows": [_workflow_dict(w) for w in f.workflows],
        "human": dict(asdict(f.human), intervention_rate=f.human.intervention_rate),
    }


def _workflow_dict(w: _stats.WorkflowFigures) -> dict[str, object]:
    d = asdict(w)
    shares = d.pop("budget_shares")
    if shares:
        d.update(budget_used_p50=w.budget_share(50), budget_used_max=max(shares))
    return d


def _print_stats(f: _stats.Stats, since: str) -> None:
    out.print(f"[bold]last {since}[/]: {f.human.runs} finished runs, {f.spans} spans")
    if f.steps:
        out.print(_table("steps", ["STEP", "CALLS", "ATTEMPTS", "RETRIES", "RETRY RATE", "FAILED ATTEMPTS",
                                   "LOST WITH WORKER"],
                         [[s.step, s.calls, s.attempts, s.retries, _pct(s.retry_rate), s.failed_attempts,
                           s.lost_attempts] for s in f.steps]))
    if f.models:
        out.print(_table("models", ["MODEL", "CALLS", "ERRORS", "P50", "P95", "TOKENS IN", "TOKENS OUT", "COST"],
                         [[m.model, m.calls, m.errors, _secs(m.percentile(50)), _secs(m.percentile(95)),
                           m.input_tokens, m.output_tokens, _usd(m.cost)] for m in f.models]))
    if f.workflows:
        out.print(_table("workflows", ["WORKFLOW", "RUNS", "FAILED", "MODEL CALLS", "TOKENS IN", "TOKENS OUT",
                                       "COST"],
                         [[w.workflow, w.runs, w.failed, w.model_calls, w.input_tokens, w.output_tokens,
                           _usd(w.cost)] for w in f.workflows]))
    budgeted = [w for w in f.workflows if w.budgeted]
    if budgeted:  # share used: of each run's limit closest to spent
        out.print(_table("budgets", ["WORKFLOW", "RUNS WITH ONE", "STOPPED BY IT", "RAISED BY A PERSON", "USED P50",
                                     "USED MAX"],
                         [[w.workflow, w.budgeted, w.over_budget, w.budget_raised, _pct(w.budget_share(50)),
                           _pct(max(w.budget_shares))] for w in budgeted]))
    h = f.human
    out.print(f"[bold]human intervention rate[/] {_pct(h.intervention_rate)} ({h.runs_with_tasks} of {h.runs} "
              f"runs asked a person; {h.tasks} tasks: {h.answered} answered, {h.expired} expired)")


def _table(title: str, columns: list[str], rows: list[list[object]]) -> Table:
    table = Table(title=title, title_justify="left", box=None, header_style="bold")
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*(str(v) for v in r))
    return table


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _secs(x: float) -> str:
    return f"{x * 1000:.0f}ms" if x < 1 else f"{x:.2f}s"


def _usd(x: float) -> str:
    return f"${x:.6f}".rstrip("0").rstrip(".") if x else "$0"


