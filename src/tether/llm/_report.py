"""Model calls as a run's history shows them: which model, which round, tokens and cost.

Runs wherever a run is read (CLI, Studio, tests); works on the decoded step records of
`tether.engine.history`, so it needs no server of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from tether.llm._step import STEP_NAME
from tether.llm._types import ModelCall, ModelReply, RunUsage


def is_model_step(step: Any) -> bool:
    """True for a history record of a model call."""
    return getattr(step, "kind", "") == "step" and getattr(step, "name", "") == STEP_NAME


def call_of(step: Any) -> ModelCall | None:
    """The `ModelCall` a model step was scheduled with (None if it cannot be read here)."""
    if not is_model_step(step) or not step.input or not isinstance(step.input[0], dict):
        return None
    try:
        return ModelCall.model_validate(step.input[0])
    except ValidationError:
        return None


def reply_of(step: Any) -> ModelReply | None:
    """The `ModelReply` a completed model step returned (None otherwise)."""
    if not is_model_step(step) or not isinstance(step.result, dict):
        return None
    try:
        return ModelReply.model_validate(step.result)
    except ValidationError:
        return None


def step_label(step: Any) -> str:
    """How a step is named in `tether show`: model steps show model, purpose and round.

    Example: "llm scripted:a · structured Invoice · repair 1 (invalid reply from scripted:a: …)".
    """
    call = call_of(step)
    if call is None:
        return str(step.name)
    what = {"structured": f"structured {call.output_name}", "extract": f"extract {call.output_name}"}.get(
        call.purpose, call.purpose)
    rnd = "" if call.round_label == "first" else f" · {call.round_label}"
    why = f" ({_short(call.reason)})" if call.reason else ""
    reply = reply_of(step)
    cached = " · cached" if reply is not None and reply.cached else ""
    return f"llm {call.model} · {what}{rnd}{cached}{why}"


def _short(text: str, limit: int = 120) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def run_usage(steps: Sequence[Any]) -> RunUsage:
    """Totals (calls, tokens, cost) of the completed model calls among `steps`."""
    total = RunUsage()
    for s in steps:
        reply = reply_of(s)
        if reply is not None:
            total.add(reply)
    return total


def usage_line(total: RunUsage) -> str:
    """One line of model usage, e.g. "models: 3 calls · 812 in / 95 out tokens · $0.0012"."""
    cost = f"${total.cost:.6f}".rstrip("0").rstrip(".") if total.cost else "$0"
    unknown = f" (+{total.unpriced_calls} calls without a known price)" if total.unpriced_calls else ""
    per_model = ", ".join(f"{m} x{u.calls}" for m, u in total.by_model.items())
    return (f"models: {total.calls} calls · {total.input_tokens} in / {total.output_tokens} out tokens"
            f" · {cost}{unknown} · {per_model}")
