"""Running an evaluation: every (configuration, case) pair becomes a durable run, then is scored.

Runs in the process that drives the evaluation (the CLI, a test, a script), as a client of the
engine; the runs themselves are served by whatever workers serve the workflow. A case's run id is
derived from the evaluation's name, its configuration and the case, and the engine refuses a second
start of an id, so an interrupted evaluation picks up where it stopped: finished cases are read from
the results file, runs still in flight are awaited rather than started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from tether.engine.client import Client, Run, RunDetail, resolve_workflow
from tether.errors import InvalidInput, RunExists, UsageError
from tether.evals._dataset import Case
from tether.evals._report import CaseResult, EvalReport, Status, summarize
from tether.evals._scorers import Scored, Scorer
from tether.llm import _report as llm_report
from tether.llm._substitute import check_overrides
from tether.workflow import Workflow

CANCEL_WAIT = 10.0
"""Seconds an evaluation waits for the run of an escalated case to stop after cancelling it."""


@dataclass(frozen=True)
class Config:
    """One model configuration: overrides applied to every run of it (see `Client.start(models=)`)."""

    models: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """`step=model,...` as given, or `default` for the workflow's own models."""
        return ",".join(f"{k}={v}" for k, v in self.models.items()) or "default"

    @property
    def key(self) -> str:
        """A short stable digest of the configuration, part of its runs' ids."""
        return hashlib.sha256(json.dumps(list(self.models.items())).encode()).hexdigest()[:8]


def parse_config(spec: str) -> Config:
    """A configuration from `step=model,step=model` (`default` or an empty string: no overrides).

    Raises:
        UsageError: An entry has no `=`, or a model is not a model string.

    Example:
        >>> parse_config("classify=local:smollm2,extract=mistral:mistral-large-latest").label
        'classify=local:smollm2,extract=mistral:mistral-large-latest'
    """
    if spec.strip() in ("", "default"):
        return Config()
    models: dict[str, str] = {}
    for part in spec.split(","):
        key, eq, model = part.partition("=")
        if not eq:
            raise UsageError(f"--models {spec!r}: expected STEP=MODEL entries separated by commas, got {part!r}")
        models[key.strip()] = model.strip()
    return Config(check_overrides(models))


Progress = Callable[[CaseResult], None]


@dataclass
class Evaluation:
    """An evaluation of one workflow over cases and model configurations (see `evaluate`)."""

    client: Client
    workflow: Workflow[Any, Any]
    cases: Sequence[Case]
    configs: Sequence[Config]
    scorers: Sequence[Scorer]
    name: str
    results: Path | None = None
    concurrency: int = 8
    on_case: Progress | None = None
    dataset: str = ""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def run_id(self, config: Config, case: Case) -> str:
        """The run id of `case` under `config` in this evaluation (the same on every resume)."""
        return f"eval-{self.name}-{config.key}-{case.id}"

    async def run(self) -> EvalReport:
        """Run (or resume) every pair and return the report."""
        done = self._finished()
        todo = [(c, k) for k in self.cases for c in self.configs if (c.label, k.id) not in done]
        for r in done.values():
            if self.on_case is not None:
                self.on_case(r)
        gate = asyncio.Semaphore(max(1, self.concurrency))

        async def one(config: Config, case: Case) -> None:
            async with gate:  # bounds the runs in flight; reading back and scoring overlap the next runs
                started = await self._start_and_wait(config, case)
            result = started if isinstance(started, CaseResult) \
                else await self._scored(config, case, *await _outcome(started))
            await self._record(result)
            done[(config.label, case.id)] = result

        await asyncio.gather(*(one(c, k) for c, k in todo))
        return self.report(done)

    def report(self, done: Mapping[tuple[str, str], CaseResult]) -> EvalReport:
        """The report of the finished pairs, configurations and cases in their given order."""
        cases: list[CaseResult] = [done[(c.label, k.id)] for c in self.configs for k in self.cases
                                   if (c.label, k.id) in done]
        configs = [summarize(c.label, dict(c.models), [r for r in cases if r.config == c.label])
                   for c in self.configs]
        return EvalReport(name=self.name, workflow=self.workflow.name, dataset=self.dataset, configs=configs,
                          cases=cases)

    def _finished(self) -> dict[tuple[str, str], CaseResult]:
        """Results recorded by an earlier, interrupted pass of this evaluation."""
        if self.results is None or not self.results.exists():
            return {}
        ids = {self.run_id(c, k): (c.label, k.id) for c in self.configs for k in self.cases}
        found: dict[tuple[str, str], CaseResult] = {}
        for line in self.results.read_text(encoding="utf-8").splitlines():
            try:
                r = CaseResult.model_validate_json(line)
            except ValueError:  # a line cut short by a kill: that case runs (or is awaited) again
                continue
            if ids.get(r.run_id) == (r.config, r.case) or (r.status == "invalid input" and not r.run_id):
                found[(r.config, r.case)] = r
        return found

    async def _record(self, result: CaseResult) -> None:
        async with self._lock:
            if self.results is not None:
                self.results.parent.mkdir(parents=True, exist_ok=True)
                with self.results.open("a", encoding="utf-8") as f:
                    f.write(result.model_dump_json() + "\n")
            if self.on_case is not None:
                self.on_case(result)

    async def _start_and_wait(self, config: Config, case: Case) -> CaseResult | Run[Any]:
        """Start the case's run (or find the one an earlier pass started) and wait until it closes
        or asks a person."""
        run_id = self.run_id(config, case)
        try:
            run: Run[Any] = await self.client.start(self.workflow, case.input, id=run_id, models=config.models)
        except InvalidInput as exc:
            return CaseResult(config=config.label, case=case.id, status="invalid input", error=str(exc))
        except RunExists:  # started by an earlier pass: await it, do not run it again
            run = self.client.get(run_id)
        await run.wait_closed(until_task=True)
        return run

    async def _scored(self, config: Config, case: Case, run: RunDetail, status: Status,
                      error: str | None) -> CaseResult:
        """The finished run (output, usage, rounds, tasks), scored."""
        base = CaseResult(config=config.label, case=case.id, run_id=run.id, status=status,
                          error=error)
        result = _measured(base, run)
        if status == "escalated":
            return result
        scored = Scored(case=case, output=result.output, output_type=self.workflow.return_type,
                        failed=status != "completed")
        for s in self.scorers:
            got = await s.score(scored)
            result.scores[s.name] = None if got is None else got.value
            result.fields.update(got.fields if got else {})
            if got is not None and got.detail:
                result.details[s.name] = got.detail
        return result


async def _outcome(run: Run[Any]) -> tuple[RunDetail, Status, str | None]:
    """The closed run read back in one call: completed, failed (with the error), or escalated when
    it asks a person (it is then cancelled: nobody answers an evaluation's question)."""
    detail = await run.closed()
    if detail.status == "running":
        await run.cancel()
        with contextlib.suppress(TimeoutError):  # the report comes once the run has stopped
            await asyncio.wait_for(run.wait_closed(), CANCEL_WAIT)
        return detail, "escalated", "the run asked a person"
    if detail.status == "completed":
        return detail, "completed", None
    return detail, "failed", detail.error or f"the run was {detail.status}"


def _measured(result: CaseResult, detail: RunDetail) -> CaseResult:
    """`result` with the run's output, duration and model usage, repairs, fallbacks and human tasks."""
    calls = [c for s in detail.steps if (c := llm_report.call_of(s)) is not None]
    usage = llm_report.run_usage(detail.steps)
    seconds = (detail.closed_at - detail.started_at).total_seconds() if detail.closed_at and detail.started_at \
        else 0.0
    return result.model_copy(update={
        "output": to_jsonable_python(detail.result) if result.status == "completed" else None,
        "error": result.error or detail.error, "seconds": round(seconds, 4),
        "model_calls": usage.calls, "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
        "cost": usage.cost, "unpriced_calls": usage.unpriced_calls,
        "repairs": sum(1 for c in calls if c.repair), "fallbacks": sum(1 for c in calls if c.fallback),
        "human_tasks": sum(1 for s in detail.steps if s.kind == "human"),
    })


async def evaluate(client: Client, workflow: Workflow[Any, Any] | str, cases: Iterable[Case], *,
                   scorers: Sequence[Scorer], configs: Sequence[Config | Mapping[str, str]] = (),
                   name: str, results: str | Path | None = None, concurrency: int = 8,
                   on_case: Progress | None = None, dataset: str = "") -> EvalReport:
    """Run every case under every model configuration as a durable run, score it and report.

    Workers serving the workflow must be running (e.g. `async with tether.Worker(client):`).

    Args:
        client: A connected client.
        workflow: The workflow, or its registered name.
        cases: The labelled cases (see `load_cases`).
        scorers: How outputs are scored (see `tether.evals.Exact`, `Fields`, `Judge`, ...).
        configs: Model configurations to compare, each `{step_or_model_pattern: model}` (none: the
            workflow's own models).
        name: The evaluation's name; with the same name, cases and configurations, a second call
            resumes the first instead of running finished cases again.
        results: File of per-case results (JSON lines), appended as cases finish and read on resume.
        concurrency: Runs in flight at once.
        on_case: Called with each case's result as it is known (progress).
        dataset: Where the cases came from (shown in the report).

    Example:
        >>> report = await evaluate(client, process_invoice, load_cases("cases.jsonl"), name="nightly",
        ...                         scorers=[Fields(), Schema()],
        ...                         configs=[{"extract": "local:smollm2"}, {"extract": "scripted:oracle"}])
    """
    given = [c if isinstance(c, Config) else Config(check_overrides(c)) for c in configs] or [Config()]
    labels = [c.label for c in given]
    if len(set(labels)) != len(labels):
        raise UsageError("the same model configuration is given twice")
    if not name or not all(ch.isalnum() or ch in "-_." for ch in name):
        raise UsageError(f"evaluation name {name!r}: use letters, digits, '-', '_' or '.'")
    ev = Evaluation(client=client, workflow=resolve_workflow(workflow), cases=list(cases), configs=given,
                    scorers=list(scorers), name=name, results=Path(results) if results else None,
                    concurrency=concurrency, on_case=on_case, dataset=dataset)
    return await ev.run()
