"""Figures over many runs from the local span store (`tether stats`): retries per step, model
latency per model, tokens and cost per workflow, how often people had to step in.

Runs in the CLI; pure computation over `StoredSpan`s.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from tether.observe import _spans as S
from tether.observe._store import StoredSpan


@dataclass
class StepFigures:
    """Calls and attempts of one step."""

    step: str
    calls: int = 0
    attempts: int = 0
    retried_calls: int = 0
    failed_attempts: int = 0
    lost_attempts: int = 0  # attempts whose worker died before their span was exported

    @property
    def retries(self) -> int:
        """Attempts beyond the first of each call."""
        return self.attempts - self.calls

    @property
    def retry_rate(self) -> float:
        """Share of calls that needed at least one retry."""
        return self.retried_calls / self.calls if self.calls else 0.0


@dataclass
class ModelFigures:
    """Latency, tokens and cost of one model."""

    model: str
    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0

    @property
    def calls(self) -> int:
        """Attempts made to the model (failed ones included)."""
        return len(self.seconds)

    def percentile(self, p: float) -> float:
        """Latency percentile (nearest rank), in seconds."""
        return percentile(self.seconds, p)


@dataclass
class WorkflowFigures:
    """Runs, model tokens and cost of one workflow."""

    workflow: str
    runs: int = 0
    failed: int = 0
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    budgeted: int = 0  # finished runs that had a budget
    over_budget: int = 0  # runs failed with BudgetExceeded (no escalation, or a person stopped them)
    budget_raised: int = 0  # times people raised a run's budget
    budget_shares: list[float] = field(default_factory=list)  # per budgeted run: its most used limit's share

    def budget_share(self, p: float) -> float:
        """Percentile of how much of their budget runs used (the limit closest to spent)."""
        return percentile(self.budget_shares, p)


@dataclass
class HumanFigures:
    """How often runs needed a person."""

    runs: int = 0
    runs_with_tasks: int = 0
    tasks: int = 0
    answered: int = 0
    expired: int = 0

    @property
    def intervention_rate(self) -> float:
        """Share of finished runs that opened at least one human task."""
        return self.runs_with_tasks / self.runs if self.runs else 0.0


@dataclass
class Stats:
    """Everything `tether stats` prints."""

    spans: int
    steps: list[StepFigures]
    models: list[ModelFigures]
    workflows: list[WorkflowFigures]
    human: HumanFigures

    @property
    def empty(self) -> bool:
        """True when no span was found."""
        return self.spans == 0


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank percentile `p` (0-100) of `values` (0.0 when empty)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def compute(spans: list[StoredSpan]) -> Stats:
    """The figures of `spans`."""
    attempts = [s for s in spans if s.attr(S.STEP_ATTEMPT) is not None]
    models = [s for s in spans if s.attr(S.GENAI_OPERATION) == "chat" and s.kind == "client"]
    runs = [s for s in spans if s.name.startswith(f"{S.RUN} ") and s.attr(S.OUTCOME)]
    return Stats(spans=len(spans), steps=_steps(attempts), models=_models(models),
                 workflows=_workflows(runs, models), human=_human(runs, spans))


def _steps(attempts: list[StoredSpan]) -> list[StepFigures]:
    by_step: dict[str, StepFigures] = {}
    calls: dict[str, dict[str, int]] = defaultdict(dict)  # step -> call (parent span) -> attempts
    seen: dict[str, dict[str, int]] = defaultdict(dict)  # step -> call -> attempt spans stored
    for s in attempts:
        name = str(s.attr(S.STEP_NAME))
        fig = by_step.setdefault(name, StepFigures(name))
        fig.failed_attempts += s.status == "error"
        key = s.parent_id or s.span_id
        # the attempt number counts attempts lost with their worker, which left no span
        calls[name][key] = max(calls[name].get(key, 0), int(s.attr(S.STEP_ATTEMPT, 1) or 1))
        seen[name][key] = seen[name].get(key, 0) + 1
    for name, per_call in calls.items():
        fig = by_step[name]
        fig.calls = len(per_call)
        fig.attempts = sum(per_call.values())
        fig.retried_calls = sum(1 for n in per_call.values() if n > 1)
        fig.lost_attempts = fig.attempts - sum(seen[name].values())
    return sorted(by_step.values(), key=lambda f: (-f.retry_rate, f.step))


def _models(models: list[StoredSpan]) -> list[ModelFigures]:
    by_model: dict[str, ModelFigures] = {}
    for s in models:
        name = str(s.attr("tether.llm.model") or s.attr(S.GENAI_REQUEST_MODEL))
        fig = by_model.setdefault(name, ModelFigures(name))
        fig.seconds.append(s.seconds)
        fig.errors += s.status == "error"
        fig.input_tokens += int(s.attr(S.GENAI_INPUT_TOKENS, 0) or 0)
        fig.output_tokens += int(s.attr(S.GENAI_OUTPUT_TOKENS, 0) or 0)
        fig.cost += float(s.attr(S.LLM_COST, 0) or 0)
    return sorted(by_model.values(), key=lambda f: f.model)


def _workflows(runs: list[StoredSpan], models: list[StoredSpan]) -> list[WorkflowFigures]:
    by_wf: dict[str, WorkflowFigures] = {}
    for r in runs:
        fig = by_wf.setdefault(str(r.attr(S.WORKFLOW)), WorkflowFigures(str(r.attr(S.WORKFLOW))))
        fig.runs += 1
        fig.failed += r.attr(S.OUTCOME) == "failed"
        if r.attr(S.BUDGET_LIMIT) is not None:
            fig.budgeted += 1
            fig.over_budget += r.attr(S.ERROR_TYPE) == "BudgetExceeded"
            fig.budget_raised += int(r.attr(S.BUDGET_RAISED, 0) or 0)
            fig.budget_shares.append(float(r.attr(S.BUDGET_USED, 0) or 0))
    for s in models:
        wf = str(s.attr(S.WORKFLOW) or "?")
        fig = by_wf.setdefault(wf, WorkflowFigures(wf))
        fig.model_calls += 1
        fig.input_tokens += int(s.attr(S.GENAI_INPUT_TOKENS, 0) or 0)
        fig.output_tokens += int(s.attr(S.GENAI_OUTPUT_TOKENS, 0) or 0)
        fig.cost += float(s.attr(S.LLM_COST, 0) or 0)
    return sorted(by_wf.values(), key=lambda f: f.workflow)


def _human(runs: list[StoredSpan], spans: list[StoredSpan]) -> HumanFigures:
    tasks = [s for s in spans if s.name.startswith(f"{S.HUMAN} ")]
    finished = {str(r.attr(S.RUN_ID)) for r in runs}
    asked = {str(t.attr(S.RUN_ID)) for t in tasks}
    return HumanFigures(runs=len(finished), runs_with_tasks=len(finished & asked), tasks=len(tasks),
                        answered=sum(1 for t in tasks if t.attr("tether.human.status") == "answered"),
                        expired=sum(1 for t in tasks if t.attr("tether.human.status") == "expired"))
