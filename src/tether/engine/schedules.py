"""Schedules: start runs of a workflow on a cron or an interval, kept by Temporal's own Schedules.

Runs wherever a client runs (CLI, Studio, applications). The engine starts each run, so a
schedule keeps firing while no tether process runs; runs wait for a worker like any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from temporalio.client import (
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleListActionStartWorkflow,
    ScheduleListDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.service import RPCError, RPCStatusCode

from tether.durations import Duration, parse_duration
from tether.errors import TetherError, UsageError
from tether.workflow import Workflow

if TYPE_CHECKING:
    from tether.engine.client import Client

Overlap = Literal["skip", "buffer", "allow"]
_OVERLAP = {"skip": ScheduleOverlapPolicy.SKIP, "buffer": ScheduleOverlapPolicy.BUFFER_ONE,
            "allow": ScheduleOverlapPolicy.ALLOW_ALL}
_OVERLAP_NAME = {v: k for k, v in _OVERLAP.items()}
WHEN = "tether.when"
"""Memo key of a schedule's timing as it was given (`cron 0 9 * * MON-FRI`, `every 1h`)."""
_CRON_FIELD = re.compile(r"^[A-Za-z0-9*/,\-?LW#]+$")


class ScheduleNotFound(TetherError):
    """No schedule has this id."""

    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"no schedule {schedule_id!r}; `tether schedules list` shows the schedules")
        self.schedule_id = schedule_id


@dataclass(frozen=True)
class ScheduledRun:
    """One run a schedule started: when it was due, when it started, its run id."""

    due_at: datetime
    started_at: datetime
    run_id: str


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule as `tether schedules list/describe` and Studio show it."""

    id: str
    workflow: str
    when: str  # "cron 0 9 * * MON-FRI" or "every 1h"
    paused: bool
    note: str
    next_runs: list[datetime] = field(default_factory=list)
    recent_runs: list[ScheduledRun] = field(default_factory=list)
    overlap: str | None = None
    catchup: timedelta | None = None

    @property
    def last_run(self) -> ScheduledRun | None:
        """The most recent run the schedule started (None before its first)."""
        return self.recent_runs[-1] if self.recent_runs else None


def check_cron(cron: str) -> str:
    """`cron` stripped, or `UsageError` when it is not five (or six, with seconds first) fields.

    The engine parses the fields themselves and its refusal is reported the same way.
    """
    text = " ".join(cron.split())
    if text.startswith("@"):  # @daily, @hourly, @every 5m: the engine's shorthands
        return text
    fields = text.split(" ")
    if len(fields) not in (5, 6, 7) or not all(_CRON_FIELD.match(f) for f in fields):
        raise UsageError(f"invalid cron expression {cron!r}: give five fields, minute hour day-of-month month "
                         "day-of-week, e.g. '0 9 * * MON-FRI' (every weekday at 09:00 UTC)")
    return text


def _spec(cron: str | None, every: Duration | None) -> tuple[ScheduleSpec, str]:
    if (cron is None) == (every is None):
        raise UsageError("a schedule needs exactly one of --cron (e.g. '0 9 * * MON-FRI') or --every (e.g. 1h)")
    if cron is not None:
        text = check_cron(cron)
        return ScheduleSpec(cron_expressions=[text]), f"cron {text}"
    interval = parse_duration(every, what="--every")  # type: ignore[arg-type]  # not None: checked above
    if interval.total_seconds() < 1:
        raise UsageError(f"--every must be at least 1s, got {every!r}")
    return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]), f"every {_short(interval)}"


def _short(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class Schedules:
    """The schedules of a namespace: create, list, describe, pause, unpause, trigger, delete.

    Reach it as `client.schedules`.

    Example:
        >>> await client.schedules.create(nightly_batch, {"day": "today"}, cron="0 2 * * *",
        ...                               id="nightly-invoices")
        >>> await client.schedules.pause("nightly-invoices", note="ledger migration")
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    async def create(self, workflow: Workflow[Any, Any] | str, input: Any = None, *, cron: str | None = None,
                     every: Duration | None = None, id: str | None = None, overlap: Overlap = "skip",
                     catchup: Duration | None = None, task_queue: str | None = None,
                     paused: bool = False, note: str = "") -> ScheduleInfo:
        """Create a schedule that starts `workflow` with `input` on a cron or every interval.

        The input is validated first; a bad input, cron or option creates nothing.

        Args:
            workflow: The workflow function or its registered name.
            input: The input of every run it starts.
            cron: Cron expression, UTC (`"0 9 * * MON-FRI"`).
            every: Interval instead of a cron (`"1h"`, `timedelta`).
            id: The schedule's id (default: the workflow's name); its runs are `<id>-<time>`.
            overlap: When a run is still going at the next time: `skip` it, `buffer` one
                start until the run ends, or `allow` runs side by side.
            catchup: How late a missed start (the engine was down) may still be made up.
            task_queue: Override the connection's task queue.
            paused: Create it paused.
            note: Why it is paused (shown by `describe`).

        Raises:
            UsageError: Bad cron, interval, overlap or id, or a schedule with this id exists.
            InvalidInput: The input does not match the workflow's input type.
        """
        from tether.engine.client import resolve_workflow

        wf = resolve_workflow(workflow)
        args = wf.validate_input(input)
        spec, when = _spec(cron, every)
        if overlap not in _OVERLAP:
            raise UsageError(f"unknown overlap policy {overlap!r}; use one of: {', '.join(_OVERLAP)}")
        schedule_id = (id or wf.name).strip()
        if not schedule_id:
            raise UsageError("a schedule id must not be empty; leave it out to use the workflow's name")
        policy = SchedulePolicy(overlap=_OVERLAP[overlap])
        if catchup is not None:
            policy = SchedulePolicy(overlap=_OVERLAP[overlap],
                                    catchup_window=parse_duration(catchup, what="--catchup"))
        action = ScheduleActionStartWorkflow(wf.name, args=args, id=schedule_id,
                                             task_queue=task_queue or self._client.connection.task_queue)
        schedule = Schedule(action=action, spec=spec, policy=policy,
                            state=ScheduleState(paused=paused, note=note))
        try:
            await self._client.temporal.create_schedule(schedule_id, schedule, memo={WHEN: when})
        except ScheduleAlreadyRunningError:
            raise UsageError(f"a schedule with id {schedule_id!r} exists; choose another --id or delete it "
                             f"first (`tether schedules delete {schedule_id}`)") from None
        except RPCError as exc:
            raise _refused(exc, cron) from None
        return await self.describe(schedule_id)

    async def list(self) -> list[ScheduleInfo]:
        """Every schedule of the namespace with its next and recent runs (the engine's listing
        catches up with a new schedule within a second or so)."""
        found = [_from_listing(s, await _memo_when(s)) async for s in await self._client.temporal.list_schedules()]
        return sorted(found, key=lambda s: s.id)

    async def describe(self, schedule_id: str) -> ScheduleInfo:
        """One schedule, read from the engine directly (always current).

        Raises:
            ScheduleNotFound: No schedule has this id.
        """
        desc = await self._call(schedule_id, lambda h: h.describe())
        return _from_description(desc, await _memo_when(desc))

    async def pause(self, schedule_id: str, *, note: str = "paused with tether") -> None:
        """Stop starting runs until `unpause` (runs in flight go on)."""
        await self._call(schedule_id, lambda h: h.pause(note=note))

    async def unpause(self, schedule_id: str, *, note: str = "unpaused with tether") -> None:
        """Start runs again at the next due time."""
        await self._call(schedule_id, lambda h: h.unpause(note=note))

    async def trigger(self, schedule_id: str) -> None:
        """Start one run now (the overlap policy applies), whether or not the schedule is paused."""
        await self._call(schedule_id, lambda h: h.trigger())

    async def delete(self, schedule_id: str) -> None:
        """Delete the schedule; runs it started go on."""
        await self._call(schedule_id, lambda h: h.delete())

    async def _call(self, schedule_id: str, op: Any) -> Any:
        handle: ScheduleHandle = self._client.temporal.get_schedule_handle(schedule_id)
        try:
            return await op(handle)
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise ScheduleNotFound(schedule_id) from None
            raise


def _refused(exc: RPCError, cron: str | None) -> TetherError | RPCError:
    """The engine's refusal of a schedule as one line (a bad cron field it parsed itself)."""
    if exc.status != RPCStatusCode.INVALID_ARGUMENT:
        return exc
    reason = str(exc.message).splitlines()[0] if exc.message else "refused"
    if cron is not None:
        return UsageError(f"invalid cron expression {cron!r}: {reason}; e.g. '0 9 * * MON-FRI' "
                          "(minute hour day-of-month month day-of-week, UTC)")
    return UsageError(f"the engine refused the schedule: {reason}")


def _when(spec: ScheduleSpec) -> str:
    if spec.cron_expressions:
        return "cron " + ", ".join(spec.cron_expressions)
    if spec.intervals:
        return "every " + ", ".join(_short(i.every) for i in spec.intervals)
    if spec.calendars:  # the engine stores crons as calendars; the listing has no cron text
        return "calendar"
    return "on demand"


async def _memo_when(item: ScheduleDescription | ScheduleListDescription) -> str | None:
    try:
        value = await item.memo_value(WHEN, None)
    except Exception:  # a memo this process cannot decrypt: fall back to the spec
        return None
    return value if isinstance(value, str) else None


def _from_description(desc: ScheduleDescription, when: str | None) -> ScheduleInfo:
    s = desc.schedule
    action = s.action
    workflow = action.workflow if isinstance(action, ScheduleActionStartWorkflow) else "?"
    return ScheduleInfo(
        id=desc.id, workflow=workflow, when=when or _when(s.spec), paused=s.state.paused, note=s.state.note or "",
        next_runs=list(desc.info.next_action_times),
        recent_runs=[_recent(a) for a in desc.info.recent_actions],
        overlap=_OVERLAP_NAME.get(s.policy.overlap) if s.policy.overlap else "skip",
        catchup=s.policy.catchup_window)


def _from_listing(item: ScheduleListDescription, when: str | None) -> ScheduleInfo:
    sched = item.schedule
    info = item.info
    action = sched.action if sched is not None else None
    workflow = action.workflow if isinstance(action, ScheduleListActionStartWorkflow) else "?"
    note = (sched.state.note or "") if sched is not None else ""
    when = when or (_when(sched.spec) if sched is not None else "?")
    return ScheduleInfo(
        id=item.id, workflow=workflow, when=when, paused=bool(sched and sched.state.paused), note=note,
        next_runs=list(info.next_action_times) if info else [],
        recent_runs=[_recent(a) for a in info.recent_actions] if info else [])


def _recent(action: Any) -> ScheduledRun:
    run_id = getattr(action.action, "workflow_id", "") or ""
    return ScheduledRun(due_at=action.scheduled_at, started_at=action.started_at, run_id=run_id)


__all__ = ["ScheduleInfo", "ScheduleNotFound", "ScheduledRun", "Schedules", "check_cron"]
