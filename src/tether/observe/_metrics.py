"""tether's metrics (OpenTelemetry instruments): steps, model calls, tokens, cost, people, runs.

Recorded on workers: step and model metrics by the process running the attempt, run and
human-task metrics by workflow code (never while it replays). Exposed through whatever
readers `_setup` attached: the Prometheus endpoint (`--metrics-port`), OTLP, tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.metrics import Counter, Histogram

from tether.observe import _setup

_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)


@dataclass(frozen=True)
class Instruments:
    """Every instrument tether records."""

    step_attempts: Counter
    step_retries: Counter
    step_duration: Histogram
    model_duration: Histogram
    model_tokens: Histogram
    model_cost: Counter
    human_tasks: Counter
    runs: Counter


_instruments: Instruments | None = None


def instruments() -> Instruments | None:
    """The instruments, or None when no metric reader is attached (nothing to record for)."""
    global _instruments
    if not _setup.metrics_on():
        return None
    if _instruments is None:
        m = _setup.meter_provider().get_meter("tether")
        _instruments = Instruments(
            step_attempts=m.create_counter("tether.step.attempts", "{attempt}",
                                           "Step attempts, by step and outcome (ok, retry, failed)"),
            step_retries=m.create_counter("tether.step.retries", "{attempt}",
                                          "Step attempts after the first, by step"),
            step_duration=m.create_histogram("tether.step.duration", "s", "Duration of step attempts",
                                             explicit_bucket_boundaries_advisory=_DURATION_BUCKETS),
            model_duration=m.create_histogram("gen_ai.client.operation.duration", "s",
                                              "Duration of model calls",
                                              explicit_bucket_boundaries_advisory=_DURATION_BUCKETS),
            model_tokens=m.create_histogram("gen_ai.client.token.usage", "{token}",
                                            "Tokens per model call, by gen_ai.token.type",
                                            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS),
            model_cost=m.create_counter("tether.llm.cost", "USD", "Cost of model calls"),
            human_tasks=m.create_counter("tether.human.tasks", "{task}",
                                         "Human tasks by event (opened, answered, expired, cancelled)"),
            runs=m.create_counter("tether.runs", "{run}", "Finished runs, by workflow and outcome"),
        )
    return _instruments


def step_attempt(step: str, zone: str | None, outcome: str, attempt: int, seconds: float) -> None:
    """Count one step attempt ("ok", "retry": failed and will be retried, "failed": for good)."""
    i = instruments()
    if i is None:
        return
    attrs = {"tether.step.name": step, "tether.outcome": outcome, "tether.step.zone": zone or "main"}
    i.step_attempts.add(1, attrs)
    if attempt > 1:
        i.step_retries.add(1, {"tether.step.name": step})
    i.step_duration.record(seconds, attrs)


def model_call(attrs: dict[str, Any], seconds: float, input_tokens: int, output_tokens: int,
               cost: float | None) -> None:
    """Record one model call's duration, tokens and cost (`attrs`: the gen_ai.* request attributes)."""
    i = instruments()
    if i is None:
        return
    i.model_duration.record(seconds, attrs)
    if "error.type" not in attrs:
        i.model_tokens.record(input_tokens, {**attrs, "gen_ai.token.type": "input"})
        i.model_tokens.record(output_tokens, {**attrs, "gen_ai.token.type": "output"})
    if cost:
        i.model_cost.add(cost, {"gen_ai.request.model": str(attrs.get("gen_ai.request.model", ""))})


def human_task(event: str, workflow: str, kind: str) -> None:
    """Count a human task event: opened, answered, expired or cancelled."""
    i = instruments()
    if i is not None:
        i.human_tasks.add(1, {"tether.event": event, "tether.workflow": workflow, "tether.human.kind": kind})


def run_finished(workflow: str, outcome: str) -> None:
    """Count a finished run (completed, failed, cancelled, continued)."""
    i = instruments()
    if i is not None:
        i.runs.add(1, {"tether.workflow": workflow, "tether.outcome": outcome})
