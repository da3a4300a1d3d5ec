"""An evaluation's results: one record per (configuration, case), figures per configuration, and the
regression gate. Plain data: written as JSON or CSV, read back by `--baseline` and by Studio.

Runs wherever results are read (the CLI, Studio, tests); needs no server.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from tether.errors import UsageError

EVALS_DIR = "evals"
"""Folder under the state dir (`.tether/`) where `tether eval` keeps reports (`NAME.json`, read by
Studio) and per-case results (`NAME.cases.jsonl`, read on resume)."""

Status = Literal["completed", "failed", "escalated", "invalid input"]


class CaseResult(BaseModel):
    """One case run under one configuration: its run, outcome, scores and model usage.

    Attributes:
        config: The configuration's label (e.g. `extract=local:smollm2`; `default` for none).
        case: The case's id.
        run_id: The run's id (`tether show RUN_ID`); empty when the input was refused.
        status: completed, failed, escalated (the run asked a person) or invalid input.
        scores: Each scorer's score (None where it did not apply, e.g. a run that asked a person).
        fields: Per-field matches of the field-level scorer.
        seconds: The run's duration, start to close.
        repairs: Model calls that re-asked after an invalid reply; `fallbacks`: calls to a fallback model.
        human_tasks: Tasks the run opened for a person (approvals, escalations).
    """

    config: str
    case: str
    run_id: str = ""
    status: Status = "completed"
    output: Any = None
    error: str | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)
    fields: dict[str, bool] = Field(default_factory=dict)
    details: dict[str, str] = Field(default_factory=dict)
    seconds: float = 0.0
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    unpriced_calls: int = 0
    repairs: int = 0
    fallbacks: int = 0
    human_tasks: int = 0


class ConfigSummary(BaseModel):
    """The figures of one model configuration over all its cases."""

    config: str
    models: dict[str, str] = Field(default_factory=dict)
    cases: int = 0
    score: float = 0.0
    scores: dict[str, float] = Field(default_factory=dict)
    fields: dict[str, float] = Field(default_factory=dict)
    cost: float = 0.0
    unpriced_calls: int = 0
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_p50: float = 0.0
    latency_p95: float = 0.0
    repair_rate: float = 0.0
    fallback_rate: float = 0.0
    failure_rate: float = 0.0
    escalation_rate: float = 0.0


class EvalReport(BaseModel):
    """A whole evaluation: which workflow on which dataset, the figures per configuration, every case."""

    name: str
    workflow: str
    dataset: str = ""
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    configs: list[ConfigSummary] = Field(default_factory=list)
    cases: list[CaseResult] = Field(default_factory=list)

    def config(self, label: str) -> ConfigSummary | None:
        """The summary of the configuration labelled `label`, if it was evaluated."""
        return next((c for c in self.configs if c.config == label), None)


def summarize(label: str, models: dict[str, str], results: Sequence[CaseResult]) -> ConfigSummary:
    """The figures of one configuration from its case results.

    Rates are shares of cases: repair and fallback rates count cases with at least one repaired or
    fallback model call; the failure rate counts failed runs and refused inputs; the escalation rate
    counts runs that asked a person. A scorer's score is its mean over the cases it applied to; the
    overall `score` is the mean of the scorers' scores.
    """
    n = len(results)
    s = ConfigSummary(config=label, models=models, cases=n)
    if not n:
        return s
    names = list(dict.fromkeys(k for r in results for k in r.scores))
    for name in names:
        got = [v for r in results if (v := r.scores.get(name)) is not None]
        if got:
            s.scores[name] = sum(got) / len(got)
    s.score = sum(s.scores.values()) / len(s.scores) if s.scores else 0.0
    for f in dict.fromkeys(k for r in results for k in r.fields):
        hits = [r.fields[f] for r in results if f in r.fields]
        s.fields[f] = sum(hits) / len(hits)
    s.cost = sum(r.cost for r in results)
    s.unpriced_calls = sum(r.unpriced_calls for r in results)
    s.model_calls = sum(r.model_calls for r in results)
    s.input_tokens = sum(r.input_tokens for r in results)
    s.output_tokens = sum(r.output_tokens for r in results)
    s.latency_p50, s.latency_p95 = percentile([r.seconds for r in results if r.run_id], 50), \
        percentile([r.seconds for r in results if r.run_id], 95)
    s.repair_rate = sum(1 for r in results if r.repairs) / n
    s.fallback_rate = sum(1 for r in results if r.fallbacks) / n
    s.failure_rate = sum(1 for r in results if r.status in ("failed", "invalid input")) / n
    s.escalation_rate = sum(1 for r in results if r.human_tasks or r.status == "escalated") / n
    return s


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil, at least the first
    return ordered[int(rank) - 1]


def load_report(path: str | Path) -> EvalReport:
    """An evaluation report written by `tether eval --out` (or kept under `.tether/evals/`).

    Raises:
        UsageError: The file cannot be read or is not an evaluation report.
    """
    p = Path(path)
    try:
        return EvalReport.model_validate_json(p.read_bytes())
    except OSError as exc:
        raise UsageError(f"cannot read evaluation report {str(p)!r}: {exc.strerror}") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in first["loc"])
        raise UsageError(f"{p} is not an evaluation report ({where}: {first['msg']})") from None


def regressions(report: EvalReport, *, baseline: EvalReport | None = None, fail_under: float | None = None,
                tolerance: float = 0.0) -> list[str]:
    """Why the evaluation should fail CI: one line per problem, none when it passes.

    Args:
        report: This evaluation.
        baseline: A previous report: any scorer's score of a configuration that drops by more than
            `tolerance` below the same configuration's score there is a regression (configurations
            match by label; a single configuration on both sides matches whatever its label).
        fail_under: Each configuration's overall score must be at least this.
        tolerance: Drop below the baseline that is still accepted (noise of a sampled model).

    Example:
        >>> regressions(report, baseline=load_report("main.json"), fail_under=0.9)
        ['extract=local:smollm2: score 0.72 is under 0.9']
    """
    lines = []
    for c in report.configs:
        if fail_under is not None and c.score < fail_under:
            lines.append(f"{c.config}: score {c.score:.3f} is under {fail_under:g}")
        before = _match(c, report, baseline) if baseline is not None else None
        if before is None:
            continue
        for name, value in c.scores.items():
            old = before.scores.get(name)
            if old is not None and value < old - tolerance:
                lines.append(f"{c.config}: {name} fell from {old:.3f} to {value:.3f} (baseline {before.config})")
    return lines


def _match(c: ConfigSummary, report: EvalReport, baseline: EvalReport) -> ConfigSummary | None:
    found = baseline.config(c.config)
    if found is None and len(report.configs) == 1 and len(baseline.configs) == 1:
        return baseline.configs[0]
    return found


SUMMARY_COLUMNS = ("config", "cases", "score", "cost", "model_calls", "input_tokens", "output_tokens",
                   "latency_p50", "latency_p95", "repair_rate", "fallback_rate", "failure_rate", "escalation_rate")


def to_csv(report: EvalReport) -> str:
    """One CSV row per configuration: the summary columns, then `score:NAME` and `field:NAME` columns."""
    scorers = list(dict.fromkeys(k for c in report.configs for k in c.scores))
    fields = list(dict.fromkeys(k for c in report.configs for k in c.fields))
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*SUMMARY_COLUMNS, *(f"score:{s}" for s in scorers), *(f"field:{f}" for f in fields)])
    for c in report.configs:
        data = c.model_dump()
        w.writerow([*(data[k] for k in SUMMARY_COLUMNS), *(c.scores.get(s, "") for s in scorers),
                    *(c.fields.get(f, "") for f in fields)])
    return buf.getvalue()
