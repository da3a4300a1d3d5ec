"""Read a run's Temporal event history as what happened: steps, attempts, sleeps, child runs.

Runs wherever a client runs (CLI, Studio, tests). Used by `tether show` and live progress.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.enums.v1 import EventType, PendingActivityState, TimeoutType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.converter import DataConverter

from tether._runtime import queue_zone
from tether.engine import notes, task_rows
from tether.engine.converter import decode_for_display, failure_text
from tether.engine.records import RunHistory, StepRecord

__all__ = ["RunHistory", "StepRecord", "merge_pending", "read_history"]

E = EventType


async def read_history(events: Sequence[HistoryEvent], converter: DataConverter) -> RunHistory:
    """Fold history events into a `RunHistory` (payloads decoded for display)."""
    out = _Reading(RunHistory(), {}, converter)
    for ev in events:
        handler = _HANDLERS.get(ev.event_type)
        if handler is not None:
            when = ev.event_time.ToDatetime(tzinfo=UTC) if ev.HasField("event_time") else None
            await handler(ev, when, out)
    return out.history


@dataclass
class _Reading:
    """A history being read: the result so far, steps by the id of the event that began them."""

    history: RunHistory
    by_event: dict[int, StepRecord]
    conv: DataConverter


Handler = Callable[[HistoryEvent, "datetime | None", _Reading], Awaitable[None]]


async def _decoded(r: _Reading, payloads: Any) -> list[Any]:
    return await decode_for_display(r.conv, payloads)


async def _started(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    values = await _decoded(r, ev.workflow_execution_started_event_attributes.input.payloads)
    r.history.input = values[0] if len(values) == 1 else (values or None)


async def _completed(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    values = await _decoded(r, ev.workflow_execution_completed_event_attributes.result.payloads)
    r.history.result = values[0] if values else None


async def _failed(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    f = await failure_text(r.conv, ev.workflow_execution_failed_event_attributes.failure)
    r.history.error, r.history.error_type = f.message, f.application_failure_info.type or None


async def _timed_out(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    r.history.error = "the run timed out"


async def _task_failed(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    failure = await failure_text(r.conv, ev.workflow_task_failed_event_attributes.failure)
    r.history.workflow_task_error = failure.message


async def _task_completed(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    r.history.workflow_task_error = None


async def _step_scheduled(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    a = ev.activity_task_scheduled_event_attributes
    queue = a.task_queue.name
    rec = StepRecord(kind="step", name=a.activity_type.name, id=a.activity_id,
                     status="scheduled", scheduled_at=when,
                     heartbeat_timeout=a.heartbeat_timeout.ToTimedelta().total_seconds()
                     if a.HasField("heartbeat_timeout") else None,
                     zone=queue_zone(queue),
                     input=await _decoded(r, a.input.payloads))
    r.by_event[ev.event_id] = rec
    r.history.steps.append(rec)


async def _step_started(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    a = ev.activity_task_started_event_attributes
    rec = r.by_event[a.scheduled_event_id]
    rec.status, rec.attempts = "running", a.attempt
    if a.HasField("last_failure"):
        rec.last_failure = (await failure_text(r.conv, a.last_failure)).message


async def _step_completed(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    a = ev.activity_task_completed_event_attributes
    rec = r.by_event[a.scheduled_event_id]
    rec.status, rec.ended_at = "completed", when
    values = await _decoded(r, a.result.payloads)
    rec.result = values[0] if values else None


async def _step_failed(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    a = ev.activity_task_failed_event_attributes
    _end(r.by_event[a.scheduled_event_id], "failed", when, await failure_text(r.conv, a.failure))


async def _step_timed_out(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    a = ev.activity_task_timed_out_event_attributes
    _end(r.by_event[a.scheduled_event_id], "timed out", when, await failure_text(r.conv, a.failure))


async def _step_cancelled(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    rec = r.by_event[ev.activity_task_canceled_event_attributes.scheduled_event_id]
    rec.status, rec.ended_at = "cancelled", when


async def _timer_started(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    a = ev.timer_started_event_attributes
    secs = a.start_to_fire_timeout.ToTimedelta().total_seconds()
    rec = StepRecord(kind="sleep", name=f"sleep {secs:g}s", id=a.timer_id, status="running", scheduled_at=when)
    r.by_event[ev.event_id] = rec
    if not await task_rows.is_human_timer(ev, r.conv):  # a task's timeout: the task row shows it
        r.history.steps.append(rec)


async def _timer_fired(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    rec = r.by_event[ev.timer_fired_event_attributes.started_event_id]
    rec.status, rec.ended_at = "completed", when


async def _timer_cancelled(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    rec = r.by_event[ev.timer_canceled_event_attributes.started_event_id]
    rec.status, rec.ended_at = "cancelled", when


async def _child_initiated(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    a = ev.start_child_workflow_execution_initiated_event_attributes
    rec = StepRecord(kind="child", name=a.workflow_type.name, id=a.workflow_id, status="scheduled",
                     scheduled_at=when, attempts=1, input=await _decoded(r, a.input.payloads))
    r.by_event[ev.event_id] = rec
    r.history.steps.append(rec)


async def _child_started(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    r.by_event[ev.child_workflow_execution_started_event_attributes.initiated_event_id].status = "running"


async def _child_completed(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    a = ev.child_workflow_execution_completed_event_attributes
    rec = r.by_event[a.initiated_event_id]
    rec.status, rec.ended_at = "completed", when
    values = await _decoded(r, a.result.payloads)
    rec.result = values[0] if values else None


async def _child_failed(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    a = ev.child_workflow_execution_failed_event_attributes
    _end(r.by_event[a.initiated_event_id], "failed", when, await failure_text(r.conv, a.failure))


async def _properties_modified(ev: HistoryEvent, when: datetime | None, r: _Reading) -> None:
    await task_rows.record_tasks(ev, r.history.steps, r.conv)  # human tasks opened, answered, expired
    await notes.record_notes(ev, r.history.steps, r.conv)  # tether.note / tether.decide


_HANDLERS: dict[int, Handler] = {
    E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED: _started,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: _completed,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: _failed,
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: _timed_out,
    E.EVENT_TYPE_WORKFLOW_TASK_FAILED: _task_failed,
    E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: _task_completed,
    E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: _step_scheduled,
    E.EVENT_TYPE_ACTIVITY_TASK_STARTED: _step_started,
    E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: _step_completed,
    E.EVENT_TYPE_ACTIVITY_TASK_FAILED: _step_failed,
    E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: _step_timed_out,
    E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: _step_cancelled,
    E.EVENT_TYPE_TIMER_STARTED: _timer_started,
    E.EVENT_TYPE_TIMER_FIRED: _timer_fired,
    E.EVENT_TYPE_TIMER_CANCELED: _timer_cancelled,
    E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: _child_initiated,
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED: _child_started,
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED: _child_completed,
    E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED: _child_failed,
    E.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED: _properties_modified,
}
"""What each kind of history event adds to the reading (other events add nothing)."""


def _end(rec: StepRecord, status: str, when: datetime | None, failure: Any) -> None:
    rec.status, rec.ended_at = status, when
    msg = failure.message
    cause = failure.cause.message if failure.HasField("cause") else ""
    kind = failure.cause.application_failure_info.type if failure.HasField("cause") else ""
    text = cause or msg
    rec.error = f"{kind}: {text}" if kind else text
    rec.error_type = kind or None


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
