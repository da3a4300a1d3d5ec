"""`tether eval`: run a workflow over labelled cases under model configurations, score, compare, gate CI.

Thin: parses the options, starts a worker when none serves the queue, drives `tether.evals`
with a progress bar, prints the side-by-side table and writes the reports.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tether import settings
from tether.cli._common import CONNECTS, StateDir, app, connection, err, out
from tether.engine.app import load_app, split_target
from tether.engine.client import resolve_workflow
from tether.engine.session import has_workflow_poller, open_session
from tether.engine.worker import MAIN, Worker
from tether.errors import UsageError
from tether.evals import (
    EVALS_DIR,
    CaseResult,
    Config,
    EvalReport,
    Exact,
    Fields,
    Schema,
    Scorer,
    evaluate,
    load_cases,
    load_report,
    parse_config,
    parse_scorer,
    regressions,
    to_csv,
)
from tether.workflow import Workflow


@app.command("eval", rich_help_panel="Runs", epilog=CONNECTS)
def eval_command(
    target: Annotated[str, typer.Argument(metavar="APP:WORKFLOW", help="e.g. examples/invoice.py:process_invoice")],
    dataset: Annotated[Path, typer.Option("--dataset", "-d", help="Cases: .jsonl ({id, input, expected} per "
                                                                      "line) or .csv.")],
    models: Annotated[list[str] | None, typer.Option(
        "--models", "-m", help="A configuration, STEP=MODEL[,STEP=MODEL...]; repeat to compare several. STEP is a "
                               "call's purpose (classify, extract, structured, chat, agent; extract.Stated for one "
                               "output type) or a model pattern (mistral:*). 'default': the workflow's own.")] = None,
    score: Annotated[list[str] | None, typer.Option(
        "--score", "-s", help="A scorer (repeatable): exact, fields[:a,b], schema, numeric:FIELD[:TOL], "
                              "contains:FIELD, regex:FIELD:PATTERN, judge:MODEL, python:MODULE:FUNCTION. Default: "
                              "fields, exact and schema.")] = None,
    concurrency: Annotated[int, typer.Option(help="Runs in flight at once.")] = 8,
    name: Annotated[str | None, typer.Option(help="The evaluation's name (default: from the workflow and the "
                                                  "dataset); the same name resumes an interrupted evaluation.")] = None,
    fresh: Annotated[bool, typer.Option("--fresh", help="Run every case again (a new name) instead of reusing "
                                                        "finished ones.")] = False,
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="Write the report as JSON.")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Write one CSV row per configuration.")] = None,
    baseline: Annotated[Path | None, typer.Option(help="A previous --out report: fail when a score drops.")] = None,
    fail_under: Annotated[float | None, typer.Option(
        "--fail-under", help="Fail when a configuration's overall score is under this (0-1).")] = None,
    tolerance: Annotated[float, typer.Option(help="Drop below the baseline still accepted.")] = 0.0,
    no_worker: Annotated[bool, typer.Option(
        "--no-worker", help="Leave the runs to the workers already serving the queue (default: a worker for "
                            "APP runs in this command too).")] = False,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """Evaluate a workflow on labelled cases: every case is a durable run, per model configuration.

    Prints scores, cost, tokens, latency and repair/fallback/failure/escalation rates side by side;
    exits 1 when --baseline or --fail-under finds a regression.
    """
    spec, wf_name = split_target(target)
    if wf_name is None:
        raise UsageError(f"name the workflow to evaluate: {target}:WORKFLOW")
    loaded = load_app(spec)
    if wf_name not in loaded.workflows:
        resolve_workflow(wf_name)  # raises UnknownWorkflow naming the known ones
    wf = loaded.workflows[wf_name]
    cases = load_cases(dataset)
    configs = [parse_config(m) for m in models or ["default"]]
    scorers = [parse_scorer(s) for s in score] if score else default_scorers(wf)
    before = load_report(baseline) if baseline is not None else None  # refuse a bad file before running
    if concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    label = name or default_name(wf, dataset, configs)
    if fresh:
        label = f"{label}-{datetime.now(UTC):%Y%m%d%H%M%S}"
    zones = None if no_worker else loaded.zones()
    report = asyncio.run(_run(wf, cases, configs, scorers, label, concurrency, state_dir, zones, str(dataset)))
    out.print(table(report))
    _write(report, state_dir / EVALS_DIR / f"{label}.json", out_file, csv_file)
    problems = regressions(report, baseline=before, fail_under=fail_under, tolerance=tolerance)
    for line in problems:
        err.print(f"[bold red]regression:[/] {line}", soft_wrap=True)
    raise typer.Exit(1 if problems else 0)


def default_scorers(wf: Workflow[Any, Any]) -> list[Scorer]:
    """Field accuracy, exact match and schema validity for structured outputs; exact match otherwise."""
    try:
        structured = TypeAdapter(wf.return_type).json_schema().get("type") == "object"
    except Exception:  # no schema for this type: score what can be compared
        structured = False
    return [Fields(), Exact(), Schema()] if structured else [Exact()]


def default_name(wf: Workflow[Any, Any], dataset: Path, configs: list[Config]) -> str:
    """`<workflow>-<dataset stem>-<digest>` of the dataset's content and the configurations: the same
    command resumes, a changed dataset or another set of configurations is a new evaluation."""
    digest = hashlib.sha256(dataset.read_bytes() + "|".join(c.key for c in configs).encode()).hexdigest()[:6]
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in dataset.stem)
    return f"{wf.name}-{stem}-{digest}"


async def _run(wf: Workflow[Any, Any], cases: Any, configs: list[Config], scorers: list[Scorer], name: str,
               concurrency: int, state_dir: Path, zones: list[str] | None, dataset: str) -> EvalReport:
    """Run the evaluation, with a worker for the app in this process unless `zones` is None."""
    if not settings.current().debug:
        logging.getLogger("temporalio").setLevel(logging.CRITICAL)  # failures are part of the report
    conn = connection()
    async with open_session(conn, state_dir) as session:
        client = session.client
        worker = None
        if zones is not None:  # its own worker: one that just stopped still looks like a poller for a while
            worker = Worker(client, queues=[MAIN, *zones])
            await worker.__aenter__()
        elif not await has_workflow_poller(client, conn.task_queue):
            err.print(f"note: no worker is serving queue {conn.task_queue!r}; the cases wait for one")
        try:
            with _progress(len(cases) * len(configs), name) as advance:
                return await evaluate(client, wf, cases, scorers=scorers, configs=configs, name=name,
                                      results=state_dir / EVALS_DIR / f"{name}.cases.jsonl",
                                      concurrency=concurrency, on_case=advance, dataset=dataset)
        finally:
            if worker is not None:
                await worker.shutdown()


class _progress:
    """A progress bar on stderr over all (configuration, case) runs; resumed cases count at once."""

    def __init__(self, total: int, name: str) -> None:
        self.bar = Progress(TextColumn("[bold]eval[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), console=err,
                            transient=False, disable=not err.is_terminal)
        self.task = self.bar.add_task(name, total=total, failed=0)
        self.failed = 0

    def __enter__(self) -> Any:
        self.bar.start()
        return self.advance

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def advance(self, result: CaseResult) -> None:
        self.failed += result.status in ("failed", "invalid input")
        self.bar.update(self.task, advance=1, failed=self.failed)


def table(report: EvalReport) -> Table:
    """The configurations side by side: a column each, a row per figure."""
    t = Table(title=f"eval {report.name}: {report.workflow}, {len({c.case for c in report.cases})} cases",
              title_justify="left")
    t.add_column("")
    for c in report.configs:
        t.add_column(c.config, justify="right", overflow="fold")
    rows: list[tuple[str, list[str]]] = [("score", [f"{c.score:.3f}" for c in report.configs])]
    for s in dict.fromkeys(k for c in report.configs for k in c.scores):
        rows.append((f"  {s}", [_share(c.scores.get(s)) for c in report.configs]))
    for f in dict.fromkeys(k for c in report.configs for k in c.fields):
        rows.append((f"  field {f}", [_share(c.fields.get(f)) for c in report.configs]))
    rows += [
        ("cost", [f"${c.cost:.4f}" + (f" (+{c.unpriced_calls} unpriced)" if c.unpriced_calls else "")
                  for c in report.configs]),
        ("tokens in / out", [f"{c.input_tokens:,} / {c.output_tokens:,}" for c in report.configs]),
        ("model calls", [str(c.model_calls) for c in report.configs]),
        ("latency p50 / p95", [f"{c.latency_p50:.2f}s / {c.latency_p95:.2f}s" for c in report.configs]),
        ("repair rate", [_share(c.repair_rate) for c in report.configs]),
        ("fallback rate", [_share(c.fallback_rate) for c in report.configs]),
        ("failure rate", [_share(c.failure_rate) for c in report.configs]),
        ("escalation rate", [_share(c.escalation_rate) for c in report.configs]),
    ]
    for label, values in rows:
        t.add_row(label, *values)
    return t


def _share(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}" if v in (0.0, 1.0) else f"{v:.1%}"


def _write(report: EvalReport, kept: Path, out_file: Path | None, csv_file: Path | None) -> None:
    kept.parent.mkdir(parents=True, exist_ok=True)
    text = report.model_dump_json(indent=1)
    kept.write_text(text, encoding="utf-8")
    if out_file is not None:
        out_file.write_text(text, encoding="utf-8")
        err.print(f"report: {out_file}")
    if csv_file is not None:
        csv_file.write_text(to_csv(report), encoding="utf-8")
        err.print(f"csv: {csv_file}")
    err.print(f"each case's run: `tether show RUN_ID`; in Studio: /evals/{report.name}")
