"""Human tasks as spans and metrics: opened, answered, expired or cancelled.

Subscribed to the `human.tasks` event the engine's task board publishes on every change.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span, Status, StatusCode

from tether import _events
from tether.observe import _metrics, _setup
from tether.observe import _spans as S
from tether.observe._run import ns, replaying, run_telemetry


def tasks_changed(records: list[Any]) -> None:
    """Open and close the spans (and count the metrics) of a run's human tasks.

    Called by the run's task board whenever a task is opened, answered, expired or cancelled.
    """
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


_events.subscribe(_events.HUMAN_TASKS, tasks_changed)
