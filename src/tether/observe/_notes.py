"""Why a run did what it did: `note` and `decide`.

Both work everywhere. In workflow code they add an event to the run's trace, write the
note to the run's memo (so `tether show` lists it for any past run, with no trace
backend) and log one line (never again on replay). In a step they add an event to the
attempt's span and log; anywhere else they log.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace

from tether import _runtime
from tether.errors import UsageError
from tether.observe import _spans as S
from tether.observe._logging import replay_safe_log

NOTE_MEMO_PREFIX = "tether.note."
"""Memo keys of a run's notes: `tether.note.0001`, … (one key per note keeps history small)."""
MAX_NOTES = 500
"""Notes kept in a run's memo (later ones still go to the trace and the log)."""
MAX_MESSAGE = 500

_log = logging.getLogger("tether.notes")


def note(message: str, /, **attributes: Any) -> None:
    """Record why the run is doing what it does, with the data that informed it.

    Shows in the run's trace (`tether trace`), in `tether show` and in the logs. Values
    may be anything JSON-like; sensitive handles are recorded as handles, never values.

    Args:
        message: The reason, in words ("amount above the auto-approval limit").
        **attributes: The facts behind it (amount=12400, limit=10000).

    Example:
        >>> tether.note("sent to manual review", amount=invoice.total, limit=LIMIT)
    """
    if not isinstance(message, str) or not message.strip():
        raise UsageError("tether.note() needs a message: a non-empty string")
    _record("note", S.NOTE_EVENT, {"message": message, **attributes}, message, attributes)


def decide(name: str, condition: Any, /, **inputs: Any) -> bool:
    """Evaluate a branch condition and record the decision with its inputs; returns it as a bool.

    Args:
        name: What is being decided ("high_risk", "needs_review").
        condition: The condition's value (anything truthy or falsy).
        **inputs: The values the condition was computed from (risk=0.91, limit=0.8).

    Example:
        >>> if tether.decide("high_risk", review.risk > 0.8, risk=review.risk, limit=0.8):
        ...     await tether.ask_human("Approve this claim?", schema=bool)
    """
    if not isinstance(name, str) or not name.strip():
        raise UsageError("tether.decide() needs a name for the decision, e.g. decide('high_risk', x > 0.8)")
    outcome = bool(condition)
    text = f"{name} = {outcome}"
    _record("decision", S.DECISION_EVENT, {"name": name, "outcome": outcome, **inputs}, text, inputs)
    return outcome


def _record(kind: str, event: str, fields: dict[str, Any], text: str, facts: dict[str, Any]) -> None:
    rt = _runtime.current()
    prefix = event  # tether.note / tether.decision
    attrs = S.attributes(prefix, {k: v for k, v in fields.items() if k in ("message", "name", "outcome")})
    attrs.update(S.attributes(f"{prefix}.input" if kind == "decision" else prefix,
                              {k: v for k, v in fields.items() if k not in ("message", "name", "outcome")}))
    in_wf = rt.in_workflow()
    timestamp = rt.time_ns()
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(event, attrs, timestamp=timestamp)
    if in_wf:
        _to_memo(rt, kind, text, facts)
    line = f"{kind}: {text}" + (f" ({_facts(facts)})" if facts else "")
    replay_safe_log(_log, logging.INFO, S.safe_text(line, 2000))


def _facts(facts: dict[str, Any]) -> str:
    return ", ".join(f"{k}={S.attribute_value(v)}" for k, v in facts.items())


def _to_memo(rt: _runtime.Runtime, kind: str, text: str, facts: dict[str, Any]) -> None:
    state = rt.run_state()
    n = state.get("tether.notes", 0) + 1
    state["tether.notes"] = n
    if n > MAX_NOTES:
        return
    record = {"n": n, "kind": kind, "text": S.safe_text(text, MAX_MESSAGE),
              "facts": {k: S.attribute_value(v) for k, v in facts.items()},
              "at": rt.now().isoformat()}
    rt.upsert_memo({f"{NOTE_MEMO_PREFIX}{n:04d}": record})
