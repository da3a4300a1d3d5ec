"""Where a span or note is being recorded: the run's telemetry state, its clock, its ids.

Asks the runtime (`tether._runtime`), so it works the same in workflow code, in step
attempts and outside any run.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from tether import _runtime
from tether.observe import _setup
from tether.observe import _spans as S

RUN_KEY = "tether.observe"
"""Key of a traced run's telemetry state in its run state (set by the engine's run span)."""


def run_telemetry() -> dict[str, Any] | None:
    """This run's telemetry state when the run is traced (workflow code only), else None."""
    rt = _runtime.current()
    if not rt.in_workflow():
        return None
    state: dict[str, Any] | None = rt.run_state().get(RUN_KEY)
    return state


def replaying() -> bool:
    """True while workflow code replays history (nothing may be exported or counted then)."""
    return _runtime.current().replaying()


def ns(when: datetime) -> int:
    """Nanoseconds since the epoch for a (workflow) datetime."""
    return int(when.timestamp() * 1_000_000_000)


def now_ns() -> int:
    """Now, in nanoseconds: workflow time in workflow code, else the clock."""
    return _runtime.current().time_ns()


def tracing_here() -> bool:
    """True when a span started now would be recorded (a traced run, or a recording span)."""
    if _runtime.current().in_workflow():
        return run_telemetry() is not None
    return trace.get_current_span().is_recording()


def run_attrs() -> dict[str, Any]:
    """The run id attribute of the code running now (none outside runs)."""
    run_id = _runtime.current().run_id()
    return {S.RUN_ID: run_id} if run_id else {}


def end(span: Span) -> None:
    """End `span` at the run's time (not at all on replay: it was exported the first time)."""
    if replaying():
        return
    span.end(end_time=now_ns())


def egress_span(blocked: BaseException) -> None:
    """Record an egress block as a (zero-length, failed) span under the current span (once per block)."""
    if getattr(blocked, "_tether_traced", False):
        return
    with contextlib.suppress(AttributeError):
        blocked._tether_traced = True  # type: ignore[attr-defined]
    attrs = {"tether.egress.label": str(getattr(blocked, "label", "")),
             "tether.egress.zone": str(getattr(blocked, "zone", "")),
             "tether.egress.destination": S.safe_text(str(getattr(blocked, "destination", "")), 300)}
    rt = _runtime.current()
    if rt.in_workflow() and run_telemetry() is None:
        return
    attrs.update(run_attrs())
    when = rt.time_ns()
    span = _setup.tracer().start_span(S.EGRESS, attributes=attrs, start_time=when)
    span.set_status(Status(StatusCode.ERROR, S.safe_text(str(blocked), 500)))
    span.end(end_time=when)
