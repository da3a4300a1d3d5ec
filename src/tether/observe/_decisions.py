"""Why a run did what it did: `note`, `decide`, tool-call spans and human-task spans.

`note` and `decide` work everywhere. In workflow code they add an event to the run's
trace, write the note to the run's memo (so `tether show` lists it for any past run, with
no trace backend) and log one line (never again on replay). In a step they add an event
to the attempt's span and log; anywhere else they log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from tether.observe import _spans as S

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
        from tether.errors import UsageError

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
        from tether.errors import UsageError

        raise UsageError("tether.decide() needs a name for the decision, e.g. decide('high_risk', x > 0.8)")
    outcome = bool(condition)
    text = f"{name} = {outcome}"
    _record("decision", S.DECISION_EVENT, {"name": name, "outcome": outcome, **inputs}, text, inputs)
    return outcome


def _record(kind: str, event: str, fields: dict[str, Any], text: str, facts: dict[str, Any]) -> None:
    from tether.engine import durable

    prefix = event  # tether.note / tether.decision
    attrs = S.attributes(prefix, {k: v for k, v in fields.items() if k in ("message", "name", "outcome")})
    attrs.update(S.attributes(f"{prefix}.input" if kind == "decision" else prefix,
                              {k: v for k, v in fields.items() if k not in ("message", "name", "outcome")}))
    in_wf = durable.in_workflow()
    timestamp = _workflow_ns() if in_wf else time.time_ns()
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event(event, attrs, timestamp=timestamp)
    if in_wf:
        _to_memo(kind, text, facts)
    line = f"{kind}: {text}" + (f" ({_facts(facts)})" if facts else "")
    from tether.observe._logging import replay_safe_log

    replay_safe_log(_log, logging.INFO, S.safe_text(line, 2000))


def _workflow_ns() -> int:
    from temporalio import workflow

    return workflow.time_ns()


def _facts(facts: dict[str, Any]) -> str:
    return ", ".join(f"{k}={S.attribute_value(v)}" for k, v in facts.items())


def _to_memo(kind: str, text: str, facts: dict[str, Any]) -> None:
    from temporalio import workflow

    from tether.engine.durable import run_state

    state = run_state()
    n = state.get("tether.notes", 0) + 1
    state["tether.notes"] = n
    if n > MAX_NOTES:
        return
    record = {"n": n, "kind": kind, "text": S.safe_text(text, MAX_MESSAGE),
              "facts": {k: S.attribute_value(v) for k, v in facts.items()},
              "at": workflow.now().isoformat()}
    workflow.upsert_memo({f"{NOTE_MEMO_PREFIX}{n:04d}": record})


# ---- tool calls --------------------------------------------------------------------------


@contextmanager
def tool_call(name: str, /, *, call_id: str | None = None, tool_type: str = "function",
              arguments: Any = None) -> Iterator[Span]:
    """Trace a tool call as an `execute_tool` span (GenAI conventions); steps run inside it nest under it.

    The agent loop uses it around each tool's step; use it yourself when workflow code
    calls a step on a model's behalf.

    Args:
        name: The tool's name as the model knows it.
        call_id: The model's id for this call, if any.
        tool_type: "function" (a step or plain function) or "extension" (e.g. an MCP server).
        arguments: The call's arguments, recorded only when content capture is on.

    Example:
        >>> with tether.observe.tool_call("lookup_customer", call_id=call.id):
        ...     row = await lookup_customer(call.args["email"])
    """
    from tether.observe import _setup

    active = _tracing_here()
    if not active:
        yield trace.INVALID_SPAN
        return
    attrs: dict[str, Any] = {S.GENAI_OPERATION: "execute_tool", S.GENAI_TOOL_NAME: name,
                             S.GENAI_TOOL_TYPE: tool_type}
    if call_id:
        attrs[S.GENAI_TOOL_CALL_ID] = call_id
    if arguments is not None and _setup.capture_content():
        attrs["gen_ai.tool.call.arguments"] = S.attribute_value(arguments)
    attrs.update(_run_attrs())
    span = _setup.tracer().start_span(f"{S.TOOL} {name}", kind=SpanKind.INTERNAL, attributes=attrs,
                                      start_time=_now_ns())
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield span
    except BaseException as exc:
        S.record_error(span, exc, timestamp=_now_ns())
        _end(span)
        raise
    finally:
        S.detach(token)
    span.set_status(Status(StatusCode.OK))
    _end(span)


def _tracing_here() -> bool:
    from tether.engine import durable

    if durable.in_workflow():
        from tether.observe._temporal import run_telemetry

        return run_telemetry() is not None
    return trace.get_current_span().is_recording()


def _run_attrs() -> dict[str, Any]:
    from tether.engine import durable

    run_id = durable.current_run_id()
    return {S.RUN_ID: run_id} if run_id else {}


def _now_ns() -> int:
    from tether.engine import durable

    return _workflow_ns() if durable.in_workflow() else time.time_ns()


def _end(span: Span) -> None:
    from tether.engine import durable

    if durable.in_workflow():
        from tether.observe._temporal import replaying

        if replaying():
            return
    span.end(end_time=_now_ns())




# ---- human tasks -------------------------------------------------------------------------


def tasks_changed(records: list[Any]) -> None:
    """Open and close the spans (and count the metrics) of a run's human tasks.

    Called by the run's task board whenever a task is opened, answered, expired or cancelled.
    """
    from tether.observe import _metrics, _setup
    from tether.observe._temporal import ns, replaying, run_telemetry

    state = run_telemetry()
    if state is None:
        return
    spans: dict[str, list[Any]] = state["tasks"]
    for rec in records:
        entry = spans.get(rec.id)
        if entry is None:
            attrs = {S.RUN_ID: rec.run_id, S.WORKFLOW: rec.workflow, "tether.human.task_id": rec.id,
                     "tether.human.kind": rec.kind, "tether.human.question": S.safe_text(rec.question, 500)}
            if rec.assignee:
                attrs["tether.human.assignee"] = rec.assignee
            if rec.step:
                attrs[S.STEP_NAME] = rec.step
            span = _setup.tracer().start_span(f"{S.HUMAN} {rec.kind}", attributes=attrs,
                                              start_time=ns(rec.opened_at))
            entry = spans[rec.id] = ["open", span]
            if not replaying():
                _metrics.human_task("opened", rec.workflow, rec.kind)
        if entry[0] == "open" and rec.status != "open":
            entry[0] = rec.status
            _close_task(entry[1], rec, replaying())
            if not replaying():
                _metrics.human_task(rec.status, rec.workflow, rec.kind)


def _close_task(span: Span, rec: Any, replay: bool) -> None:
    from tether.observe._temporal import ns

    span.set_attribute("tether.human.status", rec.status)
    if rec.answered_by:
        span.set_attribute("tether.human.answered_by", rec.answered_by)
    if rec.claimed_by:  # self-declared: kept apart from the authenticated identity
        span.set_attribute("tether.human.claimed_by", rec.claimed_by)
    if rec.closed_at is not None:
        span.set_attribute("tether.human.wait_seconds", (rec.closed_at - rec.opened_at).total_seconds())
    if rec.status == "answered":
        span.set_status(Status(StatusCode.OK))
    elif rec.status == "expired":
        span.set_status(Status(StatusCode.ERROR, "nobody answered in time"))
    if not replay:
        span.end(end_time=ns(rec.closed_at) if rec.closed_at else None)
