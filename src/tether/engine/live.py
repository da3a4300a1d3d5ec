"""A run's events as they happen: steps, tokens, progress, notes, human tasks, the outcome.

Runs wherever a client runs (the Python client, `tether run`, Studio's event stream). Two
engine-native sources, merged in one order:

- **The run's history**, followed with Temporal's long poll (`wait_new_event`): steps
  scheduled, completed and failed, child runs, sleeps, notes and decisions, human tasks, the
  run's end. Read with the same handlers as `tether show` (`engine/history.py`).
- **The pending state of steps in flight** (`DescribeWorkflowExecution`), read every
  `poll` seconds while a step is pending: attempts starting and retrying, and what a running
  attempt publishes in its heartbeats (`engine/liveness.py`): a model's text as it is written
  and `tether.progress()`. These never enter the history, so streaming costs no history bytes.

A model step's text that had not been read when the step completed is taken from its
result, so a watcher's tokens always join into the final text. Every event carries an
`offset`; `follow(after=offset)` resumes right after that event, missing nothing and
repeating nothing, also across a continue-as-new.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.service import RPCError

from tether.engine import history
from tether.engine.converter import decode_for_display, failure_text
from tether.engine.liveness import MARKER
from tether.engine.records import RunHistory, StepRecord

MODEL_STEP = "tether.llm"
"""Activity type of model calls (`tether.llm._step.STEP_NAME`): their results carry the text."""

POLL_EVERY = 0.05
"""Seconds between reads of the steps in flight while one is pending (a read of the engine's
in-memory state, cheap next to the heartbeats that write it every `LIVE_EVERY`)."""

POLL_IDLE = 0.5
"""Longest wait between reads while the steps in flight show nothing new (e.g. a step waiting
hours for a worker of its zone): each read that shows nothing waits 1.5x longer, up to this."""

E = EventType
_ENDS = {
    E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "cancelled",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued",
}

_WORD = {"scheduled": "scheduled", "running": "started", "retrying": "retrying", "completed": "completed",
         "failed": "failed", "timed out": "timed_out", "cancelled": "cancelled", "waiting": "opened",
         "answered": "answered", "expired": "expired", "noted": "noted"}
_PREFIX = {"step": "step", "child": "child", "sleep": "sleep", "human": "task", "note": "note"}


@dataclass(frozen=True)
class RunEvent:
    """One thing that happened in a run, as `Run.events()` yields it.

    Attributes:
        kind: What happened: "step.scheduled" | "step.started" | "step.retrying" |
            "step.completed" | "step.failed" | "step.timed_out" | "step.cancelled" |
            "tokens" (a model's text as it comes) | "tokens.withheld" | "progress" |
            "child.*" | "sleep.*" | "task.opened" | "task.answered" | "task.expired" |
            "note" | "decision" | "run.completed" | "run.failed" | "run.cancelled" |
            "run.terminated" | "run.timed_out" | "run.continued".
        offset: Pass it to `events(after=...)` to resume right after this event.
        at: When the watcher learnt of it.
        run_id: Temporal's run id of the execution it happened in (changes at continue-as-new).
        step: The step's name (a model call's is "tether.llm"), or the task's / note's row.
        step_id: The step's id within the run (Temporal's activity id), the task's id.
        attempt: The step attempt it belongs to (tokens of a retried attempt start afresh).
        text: Tokens: the new text. Progress: its message. Failures: the error. Notes: the note.
        model: The model writing the tokens.
        done: Progress: how much is done, if the step said.
        total: Progress: out of how much, if the step said.
        data: Anything else: a completed step's or run's result, a task's answer, a failure's type.
    """

    kind: str
    offset: str
    at: datetime
    run_id: str = ""
    step: str | None = None
    step_id: str | None = None
    attempt: int | None = None
    text: str | None = None
    model: str | None = None
    done: float | None = None
    total: float | None = None
    data: Any = None


@dataclass
class _Live:
    """What a watcher has seen of one step in flight (all part of the offset)."""

    attempt: int = 0
    chars: int = 0
    progress: int = 0
    started: int = 0
    withheld: int = 0

    def code(self) -> str:
        return f"{self.attempt}:{self.chars}:{self.progress}:{self.started}:{self.withheld}"


@dataclass
class Cursor:
    """Where a watcher is: the run, the last history event fully read (`h`), how many events of
    the next one were delivered (`n`), and what it has seen of each step in flight."""

    run_id: str
    h: int = 0
    n: int = 0
    live: dict[str, _Live] = field(default_factory=dict)

    def encode(self) -> str:
        steps = ",".join(f"{k}={v.code()}" for k, v in sorted(self.live.items()))
        return f"{self.run_id}/{self.h}/{self.n}/{steps}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Read an offset given by an earlier event.

        Raises:
            ValueError: `text` is not an offset of `Run.events()`.
        """
        try:
            run_id, h, n, steps = text.split("/")
            live = {}
            for item in filter(None, steps.split(",")):
                key, _, code = item.rpartition("=")
                live[key] = _Live(*(int(x) for x in code.split(":")))
            return cls(run_id, int(h), int(n), live)
        except (ValueError, TypeError):
            raise ValueError(f"not an event offset: {text!r} (pass the `offset` of an event "
                             "from Run.events())") from None


def _copy(live: dict[str, _Live]) -> dict[str, _Live]:
    return {k: _Live(**vars(v)) for k, v in live.items()}


class _Reader:
    """One execution's events (up to its close or continue-as-new)."""

    def __init__(self, client: Client, workflow_id: str, start: Cursor) -> None:
        self.client = client
        self.conv: DataConverter = client.data_converter
        self.handle = client.get_workflow_handle(workflow_id, run_id=start.run_id)
        self.run_id = start.run_id
        self.reading = history._Reading(RunHistory(), {}, self.conv)
        self.skip_until, self.skip_n = start.h, start.n
        self.h = 0
        self.live: dict[str, _Live] = _copy(start.live)
        self.continued_to: str | None = None
        self.ended = False

    # ---- offsets ----

    def _event(self, kind: str, offset: Cursor, **fields: Any) -> RunEvent:
        return RunEvent(kind=kind, offset=offset.encode(), at=datetime.now(UTC), run_id=self.run_id, **fields)

    # ---- history ----

    async def on_history(self, ev: HistoryEvent) -> list[RunEvent]:
        steps = self.reading.history.steps
        if ev.event_id <= self.skip_until:  # delivered before the watcher reconnected: just read it
            await self._apply(ev)
            self.h = ev.event_id
            return []
        before_live = _copy(self.live)
        seen = {id(s): s.status for s in steps}
        await self._apply(ev)
        drafts: list[tuple[str, dict[str, Any]]] = []
        for rec in steps:
            status = seen.get(id(rec))
            if status != rec.status:
                drafts.extend(await self._changed(rec, new=status is None))
        end = _ENDS.get(ev.event_type)
        if end is not None:
            drafts.append(("run." + end, self._outcome(ev, end)))
            self.ended = True
            if end == "continued":
                self.continued_to = ev.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        out = []
        for i, (kind, fields) in enumerate(drafts):
            if ev.event_id == self.skip_until + 1 and i < self.skip_n:
                continue  # delivered before the watcher reconnected
            out.append(self._event(kind, Cursor(self.run_id, self.h, i + 1, before_live), **fields))
        self.h = ev.event_id
        if out:  # the last event of this history event: resume after all of it
            last = out[-1]
            out[-1] = RunEvent(**{**vars(last), "offset": Cursor(self.run_id, self.h, 0, self.live).encode()})
        return out

    async def _apply(self, ev: HistoryEvent) -> None:
        handler = history._HANDLERS.get(ev.event_type)
        if handler is not None:
            when = ev.event_time.ToDatetime(tzinfo=UTC) if ev.HasField("event_time") else None
            await handler(ev, when, self.reading)

    async def _changed(self, rec: StepRecord, *, new: bool) -> list[tuple[str, dict[str, Any]]]:
        prefix = _PREFIX.get(rec.kind, rec.kind)
        word = _WORD.get(rec.status, rec.status.replace(" ", "_"))
        base: dict[str, Any] = {"step": rec.name, "step_id": rec.id}
        if rec.kind == "note":  # "note: text (facts)" or "decision: name = value (inputs)"
            kind, _, text = rec.name.partition(": ")
            return [(kind if kind in ("note", "decision") else "note", {**base, "text": text, "data": rec.result})]
        if rec.kind == "human":
            return [(f"task.{'opened' if new else word}", {**base, "text": rec.input[0] if rec.input else None,
                                                           "data": rec.result})]
        if rec.kind != "step":
            return [(f"{prefix}.{word}", {**base, "data": rec.result, "text": rec.error})]
        seen = self.live.get(rec.id)
        if rec.status == "running":  # recorded with the attempt's end; say it only if not said live
            if seen is not None and seen.attempt == rec.attempts and seen.started:
                return []
            self.live[rec.id] = _Live(attempt=rec.attempts, started=1)
            return [("step.started", {**base, "attempt": rec.attempts})]
        out: list[tuple[str, dict[str, Any]]] = []
        if rec.status == "completed" and rec.name == MODEL_STEP:
            out.extend(self._rest_of_text(rec, seen))
        if rec.status in ("completed", "failed", "timed out", "cancelled"):
            self.live.pop(rec.id, None)
        out.append((f"step.{word}", {**base, "attempt": rec.attempts or None, "text": rec.error,
                                     "data": rec.result if rec.status == "completed" else rec.error_type}))
        return out

    def _rest_of_text(self, rec: StepRecord, seen: _Live | None) -> list[tuple[str, dict[str, Any]]]:
        """The text of a completed model step that the watcher had not read live."""
        result = rec.result if isinstance(rec.result, dict) else {}
        text = result.get("text")
        if not isinstance(text, str) or (seen is not None and seen.withheld):
            return []
        fresh = seen is None or seen.attempt != rec.attempts
        rest = text if fresh else text[seen.chars:] if seen is not None else text
        if not rest:
            return []
        return [("tokens", {"step": rec.name, "step_id": rec.id, "attempt": rec.attempts, "text": rest,
                            "model": result.get("model"), "data": {"from_result": True}})]

    def _outcome(self, ev: HistoryEvent, end: str) -> dict[str, Any]:
        h = self.reading.history
        if end == "completed":
            return {"data": h.result}
        if end == "failed":
            return {"text": h.error, "data": h.error_type}
        if end == "continued":
            return {"data": ev.workflow_execution_continued_as_new_event_attributes.new_execution_run_id}
        return {"text": h.error}

    # ---- steps in flight ----

    def pending(self) -> bool:
        """True while a step is in flight (and the history delivered before a reconnect is read)."""
        if self.h < self.skip_until:
            return False  # a read now would give offsets before events the watcher already has
        return any(s.kind == "step" and s.status in ("scheduled", "running", "retrying")
                   for s in self.reading.history.steps)

    async def poll(self) -> list[RunEvent]:
        try:
            desc = await self.handle.describe()
        except RPCError:
            return []  # a passing outage: the history follower reports a lasting one
        steps = {s.id: s for s in self.reading.history.steps if s.kind == "step"}
        out: list[RunEvent] = []
        for p in desc.raw_description.pending_activities:
            rec = steps.get(p.activity_id)
            if rec is not None and rec.status in ("scheduled", "running", "retrying"):
                await self._pending(rec, p, out)
        return out

    def _said(self, out: list[RunEvent], kind: str, **fields: Any) -> None:
        """Add a live event; its offset is the watcher's state once it has seen it."""
        out.append(self._event(kind, Cursor(self.run_id, self.h, 0, self.live), **fields))

    async def _pending(self, rec: StepRecord, p: Any, out: list[RunEvent]) -> None:
        base: dict[str, Any] = {"step": rec.name, "step_id": rec.id, "attempt": p.attempt}
        seen = self.live.get(rec.id)
        if seen is None or p.attempt > seen.attempt:
            seen = self.live[rec.id] = _Live(attempt=p.attempt)
            if p.attempt > 1:
                why = (await failure_text(self.conv, p.last_failure)).message if p.HasField("last_failure") else None
                self._said(out, "step.retrying", **base, text=why)
        if p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED and not seen.started:
            seen.started = 1
            self._said(out, "step.started", **base)
        if p.state != PendingActivityState.PENDING_ACTIVITY_STATE_STARTED or not p.HasField("heartbeat_details"):
            return
        values = await decode_for_display(self.conv, p.heartbeat_details.payloads)
        mark = values[0] if values and isinstance(values[0], dict) else {}
        live = mark.get("live")
        if mark.get(MARKER) != p.attempt or not isinstance(live, dict):
            return  # the previous attempt's last heartbeat, or nothing published yet
        chars, start, text = int(live.get("chars", 0)), int(live.get("from", 0)), str(live.get("text", ""))
        if chars > seen.chars and not seen.withheld:
            piece = text[max(0, seen.chars - start):]
            gap = max(0, start - seen.chars)  # fell further behind than the heartbeat keeps
            seen.chars = chars
            self._said(out, "tokens", **base, text=piece, model=live.get("model"),
                       data={"skipped": gap} if gap else None)
        progress = live.get("progress")
        if isinstance(progress, dict) and int(progress.get("seq", 0)) > seen.progress:
            seen.progress = int(progress.get("seq", 0))
            self._said(out, "progress", **base, text=progress.get("message"), done=progress.get("done"),
                       total=progress.get("total"))
        if live.get("withheld") and not seen.withheld:
            seen.withheld = 1
            self._said(out, "tokens.withheld", **base,
                       text=f"the rest of this reply is withheld: it carried sensitive value {live['withheld']!r}")


async def follow(client: Client, workflow_id: str, *, after: str | None = None,
                 poll: float = POLL_EVERY) -> AsyncIterator[RunEvent]:
    """Yield the run's events as they happen, from the start or right after offset `after`;
    ends after the run's last event ("run.completed", "run.failed", ...). A run that continued
    as new is followed into its next execution.

    Raises:
        ValueError: `after` is not an offset from an earlier event.
        RPCError: The run does not exist, or the server stayed unreachable.
    """
    cursor = Cursor.parse(after) if after else None
    if cursor is None:
        desc = await client.get_workflow_handle(workflow_id).describe()
        cursor = Cursor(desc.run_id or "")
    while True:
        reader = _Reader(client, workflow_id, cursor)
        async for event in _read(reader, poll):
            yield event
        if reader.continued_to is None:
            return
        cursor = Cursor(reader.continued_to)


async def _read(reader: _Reader, poll: float) -> AsyncIterator[RunEvent]:
    events: asyncio.Queue[HistoryEvent | BaseException | None] = asyncio.Queue()

    async def pull() -> None:
        try:
            async for ev in reader.handle.fetch_history_events(wait_new_event=True):
                await events.put(ev)
                if ev.event_type in _ENDS:
                    break
            await events.put(None)
        except BaseException as exc:
            await events.put(exc)

    puller = asyncio.create_task(pull())
    next_poll, every = 0.0, poll
    try:
        while True:
            if reader.pending() and time.monotonic() >= next_poll:
                news = await reader.poll()
                for event in news:
                    yield event
                every = poll if news else min(max(every, poll) * 1.5, max(poll, POLL_IDLE))
                next_poll = time.monotonic() + every
            wait = max(0.0, next_poll - time.monotonic()) if reader.pending() else None
            try:
                item = await asyncio.wait_for(events.get(), wait)
            except TimeoutError:
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            for event in await reader.on_history(item):
                yield event
            every = poll  # something happened: steps in flight may change soon
            next_poll = min(next_poll, time.monotonic() + poll)
            if reader.ended:
                return
    finally:
        puller.cancel()


__all__ = ["Cursor", "RunEvent", "follow"]
