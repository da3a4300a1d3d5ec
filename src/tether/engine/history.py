"""Read a run's Temporal event history as what happened: steps, attempts, sleeps, child runs.

Runs wherever a client runs (CLI, Studio, tests). Used by `tether show` and live progress.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType, PendingActivityState, TimeoutType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.converter import DataConverter

from tether.engine.converter import decode_for_display, failure_text
from tether.engine.durable import ZONE_SEPARATOR

E = EventType


@dataclass
class StepRecord:
    """One step (activity), sleep (timer) or child run in a run's history."""

    kind: str  # "step" | "sleep" | "child" | "human" | "note"
    name: str
    id: str
    status: str  # scheduled | running | retrying | completed | failed | timed out | cancelled
    attempts: int = 0
    zone: str | None = None
    scheduled_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    last_failure: str | None = None
    input: list[Any] = field(default_factory=list)
    result: Any = None
    waiting_for: str | None = None  # e.g. "a worker in zone vault" when no worker polls its queue
    heartbeat_timeout: float | None = None  # seconds, as scheduled
    waiting_since: datetime | None = None  # when the pending attempt became due and no worker took it
    lost: str | None = None  # e.g. "worker lost at 14:02:11, retry due 14:02:21"

    @property
    def duration(self) -> float | None:
        """Seconds from scheduling to the end, when it has ended."""
        if self.scheduled_at and self.ended_at:
            return (self.ended_at - self.scheduled_at).total_seconds()
        return None


@dataclass
class RunHistory:
    """What a run's history says: its input, outcome, steps and any stuck workflow task."""

    input: Any = None
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    workflow_task_error: str | None = None


async def read_history(events: Sequence[HistoryEvent], converter: DataConverter) -> RunHistory:
    """Fold history events into a `RunHistory` (payloads decoded for display)."""
    out = RunHistory()
    by_event: dict[int, StepRecord] = {}
    for ev in events:
        await _apply(ev, out, by_event, converter)
    return out


async def _apply(ev: HistoryEvent, out: RunHistory, by_event: dict[int, StepRecord],
                 conv: DataConverter) -> None:
    t = ev.event_type
    when = ev.event_time.ToDatetime(tzinfo=UTC) if ev.HasField("event_time") else None
    a: Any  # the event's attributes message; its type depends on the event type
    if t == E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        a = ev.workflow_execution_started_event_attributes
        values = await decode_for_display(conv, a.input.payloads)
        out.input = values[0] if len(values) == 1 else (values or None)
    elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        values = await decode_for_display(conv, ev.workflow_execution_completed_event_attributes.result.payloads)
        out.result = values[0] if values else None
    elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
        f = await failure_text(conv, ev.workflow_execution_failed_event_attributes.failure)
        out.error, out.error_type = f.message, f.application_failure_info.type or None
    elif t == E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT:
        out.error = "the run timed out"
    elif t == E.EVENT_TYPE_WORKFLOW_TASK_FAILED:
        out.workflow_task_error = (await failure_text(conv, ev.workflow_task_failed_event_attributes.failure)).message
    elif t == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        out.workflow_task_error = None
    elif t == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
        a = ev.activity_task_scheduled_event_attributes
        queue = a.task_queue.name
        rec = StepRecord(kind="step", name=a.activity_type.name, id=a.activity_id,
                         status="scheduled", scheduled_at=when,
                         heartbeat_timeout=a.heartbeat_timeout.ToTimedelta().total_seconds()
                         if a.HasField("heartbeat_timeout") else None,
                         zone=queue.split(ZONE_SEPARATOR, 1)[1] if ZONE_SEPARATOR in queue else None,
                         input=await decode_for_display(conv, a.input.payloads))
        by_event[ev.event_id] = rec
        out.steps.append(rec)
    elif t == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
        a = ev.activity_task_started_event_attributes
        rec = by_event[a.scheduled_event_id]
        rec.status, rec.attempts = "running", a.attempt
        if a.HasField("last_failure"):
            rec.last_failure = (await failure_text(conv, a.last_failure)).message
    elif t == E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
        a = ev.activity_task_completed_event_attributes
        rec = by_event[a.scheduled_event_id]
        rec.status, rec.ended_at = "completed", when
        values = await decode_for_display(conv, a.result.payloads)
        rec.result = values[0] if values else None
    elif t == E.EVENT_TYPE_ACTIVITY_TASK_FAILED:
        a = ev.activity_task_failed_event_attributes
        _end(by_event[a.scheduled_event_id], "failed", when, await failure_text(conv, a.failure))
    elif t == E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT:
        a = ev.activity_task_timed_out_event_attributes
        _end(by_event[a.scheduled_event_id], "timed out", when, await failure_text(conv, a.failure))
    elif t == E.EVENT_TYPE_ACTIVITY_TASK_CANCELED:
        a = ev.activity_task_canceled_event_attributes
        by_event[a.scheduled_event_id].status = "cancelled"
        by_event[a.scheduled_event_id].ended_at = when
    else:
        await _apply_timers_and_children(ev, t, when, out, by_event, conv)


async def _apply_timers_and_children(ev: HistoryEvent, t: int, when: datetime | None,
                                     out: RunHistory, by_event: dict[int, StepRecord],
                                     conv: DataConverter) -> None:
    from tether.engine import inbox
    from tether.observe import _history as observe_history

    a: Any
    if t == E.EVENT_TYPE_TIMER_STARTED:
        a = ev.timer_started_event_attributes
        secs = a.start_to_fire_timeout.ToTimedelta().total_seconds()
        rec = StepRecord(kind="sleep", name=f"sleep {secs:g}s", id=a.timer_id,
                         status="running", scheduled_at=when)
        by_event[ev.event_id] = rec
        if not await inbox.is_human_timer(ev, conv):  # a task's timeout: the task row shows it
            out.steps.append(rec)
    elif t == E.EVENT_TYPE_TIMER_FIRED:
        rec = by_event[ev.timer_fired_event_attributes.started_event_id]
        rec.status, rec.ended_at = "completed", when
    elif t == E.EVENT_TYPE_TIMER_CANCELED:
        rec = by_event[ev.timer_canceled_event_attributes.started_event_id]
        rec.status, rec.ended_at = "cancelled", when
    elif t == E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
        a = ev.start_child_workflow_execution_initiated_event_attributes
        rec = StepRecord(kind="child", name=a.workflow_type.name, id=a.workflow_id,
                         status="scheduled", scheduled_at=when, attempts=1,
                         input=await decode_for_display(conv, a.input.payloads))
        by_event[ev.event_id] = rec
        out.steps.append(rec)
    elif t == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
        by_event[ev.child_workflow_execution_started_event_attributes.initiated_event_id].status = "running"
    elif t == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
        a = ev.child_workflow_execution_completed_event_attributes
        rec = by_event[a.initiated_event_id]
        rec.status, rec.ended_at = "completed", when
        values = await decode_for_display(conv, a.result.payloads)
        rec.result = values[0] if values else None
    elif t == E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED:
        a = ev.child_workflow_execution_failed_event_attributes
        _end(by_event[a.initiated_event_id], "failed", when, await failure_text(conv, a.failure))
    elif t == E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED:
        await inbox.record_tasks(ev, out.steps, conv)  # human tasks opened, answered, expired
        await observe_history.record_notes(ev, out.steps, conv)  # tether.note / tether.decide


def _end(rec: StepRecord, status: str, when: datetime | None, failure: Any) -> None:
    rec.status, rec.ended_at = status, when
    msg = failure.message
    cause = failure.cause.message if failure.HasField("cause") else ""
    kind = failure.cause.application_failure_info.type if failure.HasField("cause") else ""
    text = cause or msg
    rec.error = f"{kind}: {text}" if kind else text


async def merge_pending(steps: list[StepRecord], pending: Sequence[PendingActivityInfo],
                        converter: DataConverter, now: datetime | None = None) -> None:
    """Add live attempt counts and last failures (decoded by `converter`) of activities still in
    flight, and say when an attempt's worker is gone (no heartbeat within its timeout) or a due
    attempt waits."""
    now = now or datetime.now(UTC)
    by_id = {s.id: s for s in steps if s.kind == "step"}
    for p in pending:
        rec = by_id.get(p.activity_id)
        if rec is None:
            continue
        rec.attempts = max(rec.attempts, p.attempt)
        if p.HasField("last_failure"):
            rec.last_failure = (await failure_text(converter, p.last_failure)).message
        if p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
            rec.status = "running"
            _check_alive(rec, p, now)
            continue
        if p.HasField("last_failure"):
            rec.status = "retrying"
            if p.last_failure.timeout_failure_info.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT:
                lost_at = _time(p, "last_heartbeat_time") or _time(p, "last_started_time")
                due = _time(p, "next_attempt_schedule_time")
                rec.lost = f"worker lost at {_clock(lost_at)}, retry due {_clock(due)}"
        due_at = _time(p, "next_attempt_schedule_time") or _time(p, "scheduled_time")
        if due_at is not None and due_at <= now:
            rec.waiting_since = due_at


def _check_alive(rec: StepRecord, p: PendingActivityInfo, now: datetime) -> None:
    # attempts heartbeat at least every 0.8 x the timeout (the SDK's throttle), so a longer
    # silence means the worker is gone; the engine notices at the full timeout
    if not rec.heartbeat_timeout:
        return
    last = _time(p, "last_heartbeat_time") or _time(p, "last_started_time")
    if last is None or (now - last).total_seconds() <= 0.9 * rec.heartbeat_timeout:
        return
    rec.status = "lost"
    due = last + timedelta(seconds=rec.heartbeat_timeout)
    rec.lost = f"worker lost at {_clock(last)}, retry due {_clock(due)}"


def _time(p: PendingActivityInfo, field_name: str) -> datetime | None:
    if not p.HasField(field_name):  # type: ignore[arg-type]
        return None
    value: datetime = getattr(p, field_name).ToDatetime(tzinfo=UTC)
    return value if value.year > 1970 else None


def _clock(t: datetime | None) -> str:
    return t.astimezone().strftime("%H:%M:%S") if t else "soon"
