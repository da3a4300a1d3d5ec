"""Liveness of step attempts: automatic heartbeats, lost-attempt counting, idempotency keys.

Runs on workers, around every step attempt (a Temporal activity interceptor installed by
`tether.Worker`). An attempt heartbeats on its own, so the engine notices a dead worker
within the heartbeat timeout (10 s by default) instead of the step's whole timeout. Each
heartbeat carries a small marker; the next attempt reads it and knows whether the previous
one ended or was lost with its worker, so a step that keeps killing its worker (a poison
input, a native crash) fails with that reason instead of being retried forever.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ActivityOutboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from tether import settings

PULSE_EVERY = 2.0
"""Seconds between an attempt's heartbeats at most: a run's cancellation reaches a step
attempt through the reply to a heartbeat, so this bounds how long a cancelled step runs on."""

MARKER = "tether.attempt"
"""Key of the marker dict that tether puts first in every heartbeat's details."""

PULSE = "__tether_pulse__"
"""Attribute of a tether step's activity function: "auto" (its attempts heartbeat on their
own) or "manual" (the step set `heartbeat=` and calls `tether.heartbeat()` itself)."""

LIVE_EVERY = 0.1
"""Seconds between the heartbeats that carry an attempt's live events (tokens, progress) at most:
watchers (`Run.events()`) read them from the engine as the attempt's pending state, not from
history, so a streaming step adds no history events."""

LIVE_BEATS = 40.0
"""Heartbeats per second that all of a worker's streaming attempts together send at most: each
costs the worker's event loop a few milliseconds in the SDK (measured ~2.5 ms under load), so with
many steps streaming at once each beats less often than every `LIVE_EVERY`."""

LIVE_TAIL = 8_000
"""Characters of an attempt's streamed text kept in its heartbeat (its most recent ones: about
20 s of a model writing 100 tokens/s, for a watcher that reconnects or falls behind; each beat
carries them, so more would cost the engine a write of that size ten times a second)."""

LOST_ERROR = "WorkerLost"
"""Error type of a step failed because its attempts kept losing their worker."""


def default_heartbeat_timeout() -> timedelta:
    """The heartbeat timeout of steps that set none: `TETHER_HEARTBEAT_TIMEOUT`, else 10 s."""
    return max(settings.current().heartbeat_timeout, timedelta(seconds=1))


LOST_ALLOWANCE = 3
"""Attempts of one step call that may be lost with their worker (or handed back at a
shutdown) on top of the step's own attempts; a step that loses this many fails (`WorkerLost`).
Infrastructure faults do not use up the retries a step set for its own errors."""


def engine_attempts(step_attempts: int) -> int:
    """The engine's maximum attempts for a step allowed `step_attempts` (0: unlimited)."""
    return step_attempts + LOST_ALLOWANCE if step_attempts > 0 else 0


def marker(details: Sequence[Any]) -> dict[str, Any] | None:
    """The tether marker in an attempt's heartbeat details, if it has one."""
    for d in details[:1]:
        if isinstance(d, dict) and isinstance(d.get(MARKER), int):
            return d
    return None


def lost_so_far(previous: dict[str, Any] | None, attempt: int) -> int:
    """Attempts lost before `attempt`, given the last marker the previous attempts left.

    An attempt that ends (returns or raises, also when a graceful shutdown hands it back)
    says so in its last heartbeat, which the engine keeps with the failure. One whose last
    marker is still open was cut off while it ran (its worker died or froze), unless it kept
    beating until its own deadline (a timeout, retried as usual). Attempts that left no
    marker never got to run tether's code (e.g. an overloaded worker that had not started
    them); they are not counted, so only attempts that really ran and vanished make a step
    "poison".
    """
    if previous is None:
        return 0
    lost = int(previous.get("lost", 0))
    if int(previous[MARKER]) >= attempt:
        return lost
    if previous.get("ended"):
        return lost + 1 if previous.get("handed_back") else lost
    beat, deadline, every = (float(previous.get(k, 0)) for k in ("beat", "deadline", "timeout"))
    timed_out = deadline > 0 and beat >= deadline - every
    return lost if timed_out else lost + 1


class _Pulse:
    """Heartbeats of one attempt: the marker first, then whatever `tether.heartbeat()` last gave."""

    def __init__(self, outbound: ActivityOutboundInterceptor, info: activity.Info, lost: int) -> None:
        self.outbound = outbound
        self.loop = asyncio.get_running_loop()
        self.task_queue = info.task_queue
        limit = info.start_to_close_timeout
        self.state: dict[str, Any] = {
            MARKER: info.attempt, "lost": lost,
            "deadline": (info.started_time.timestamp() + limit.total_seconds()) if limit else 0,
            "timeout": (info.heartbeat_timeout or default_heartbeat_timeout()).total_seconds(),
        }
        self.details: tuple[Any, ...] = ()
        self.live: dict[str, Any] = {}
        self._live_due: asyncio.TimerHandle | None = None
        self._last_beat = 0.0

    def beat(self, *details: Any) -> None:
        if details:
            self.details = details
        if self._live_due is not None:
            self._live_due.cancel()
            self._live_due = None
        self._last_beat = time.monotonic()
        self.state["beat"] = time.time()
        if self.live:
            self.state["live"] = dict(self.live)
        self.outbound.heartbeat(dict(self.state), *self.details)

    def publish(self, kind: str, fields: dict[str, Any]) -> None:
        """Fold a live event into the attempt's live state; the next heartbeat (within
        `LIVE_EVERY`) carries it. Runs on the worker's event loop."""
        live = self.live
        if kind == "tokens":
            text = str(fields.get("text", ""))
            live["model"] = fields.get("model", live.get("model"))
            if fields.get("restart"):  # a new model call in the same attempt (e.g. a stored transcript)
                live["calls"] = int(live.get("calls", 0)) + 1
            live["chars"] = int(live.get("chars", 0)) + len(text)
            tail = str(live.get("text", "")) + text
            if len(tail) > LIVE_TAIL:
                tail = tail[-LIVE_TAIL:]
            live["text"], live["from"] = tail, live["chars"] - len(tail)
        elif kind == "progress":
            live["progress"] = {**fields, "seq": int(live.get("progress", {}).get("seq", 0)) + 1}
        elif kind == "withheld":
            live["withheld"] = fields.get("label") or "a sensitive value"
        if self._live_due is None:
            _streaming.add(self)
            every = max(LIVE_EVERY, len(_streaming) / LIVE_BEATS)
            wait = max(0.0, self._last_beat + every - time.monotonic())
            self._live_due = self.loop.call_later(wait, self.beat)

    def end(self, *, handed_back: bool = False) -> None:
        self.state.update(ended=True, handed_back=handed_back)
        self.beat()

    async def run(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            self.beat()


_pulses: dict[bytes, _Pulse] = {}
_streaming: set[_Pulse] = set()
"""Attempts of this worker that have published live events (share `LIVE_BEATS`)."""


def in_flight() -> int:
    """Step attempts running in this process now."""
    return len(_pulses)


async def hand_back(client: Any, task_queues: Sequence[str]) -> int:
    """Fail the attempts still running for `task_queues` through the engine, marked as ended
    (not lost), so they are retried elsewhere at once; returns how many were handed back."""
    handed = 0
    for token, pulse in list(_pulses.items()):
        if pulse.task_queue not in task_queues:
            continue
        _pulses.pop(token, None)
        pulse.state.update(ended=True, handed_back=True)
        error = ApplicationError("the worker stopped before this attempt finished; retrying it elsewhere",
                                 type="WorkerShutdown")
        try:
            await client.get_async_activity_handle(task_token=token).fail(
                error, last_heartbeat_details=[dict(pulse.state)])
            handed += 1
        except Exception:  # already completed or timed out: nothing to hand back
            continue
    return handed


def user_heartbeat(*details: Any) -> bool:
    """Send `details` with the marker when the running attempt is tether's; False otherwise."""
    if not activity.in_activity():
        return False
    pulse = _pulses.get(activity.info().task_token)
    if pulse is None:
        return False
    if pulse.loop is not _running_loop():
        pulse.loop.call_soon_threadsafe(pulse.beat, *details)  # a sync step: heartbeats happen on the loop
    else:
        pulse.beat(*details)
    return True


def streaming() -> bool:
    """True inside a tether step attempt on this worker, when streaming is on (`TETHER_STREAM`)."""
    return activity.in_activity() and activity.info().task_token in _pulses and settings.current().stream


def publish(kind: str, fields: dict[str, Any]) -> None:
    """Publish a live event of the running attempt (see `_Pulse.publish`); else nothing."""
    if not activity.in_activity():
        return
    pulse = _pulses.get(activity.info().task_token)
    if pulse is None:
        return
    if pulse.loop is not _running_loop():
        pulse.loop.call_soon_threadsafe(pulse.publish, kind, dict(fields))
    else:
        pulse.publish(kind, fields)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Inbound(ActivityInboundInterceptor):
    def init(self, outbound: ActivityOutboundInterceptor) -> None:
        self._outbound = outbound
        super().init(outbound)

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        mode = getattr(input.fn, PULSE, None)
        if mode is None:  # a plain temporalio activity served beside tether's steps
            return await super().execute_activity(input)
        lost = lost_so_far(marker(info.heartbeat_details), info.attempt)
        if lost >= LOST_ALLOWANCE:
            raise ApplicationError(
                f"step {info.activity_type!r} lost its worker on {lost} attempts (the worker crashed, "
                "was killed or stopped responding while running it); not retrying it again",
                type=LOST_ERROR, non_retryable=True)
        pulse = _Pulse(self._outbound, info, lost)
        _pulses[info.task_token] = pulse
        beating = None
        if mode == "auto":  # the first beat after one interval: a short step costs no extra call
            beating = asyncio.create_task(pulse.run(min(PULSE_EVERY, max(0.2, pulse.state["timeout"] / 4))))
        try:
            return await super().execute_activity(input)
        except Exception as exc:
            pulse.end(handed_back=isinstance(exc, CancelledError))  # rides with the failure to the engine
            final = _final_if_spent(exc, info, lost)
            if final is exc:
                raise
            raise final from exc.__cause__ if isinstance(exc, ApplicationError) else exc
        except BaseException:  # cancelled: by request, or cut off at the end of a shutdown's grace
            pulse.end(handed_back=True)
            raise
        finally:
            if beating is not None:
                beating.cancel()
            if pulse._live_due is not None:
                pulse._live_due.cancel()
            _streaming.discard(pulse)
            _pulses.pop(info.task_token, None)


def _final_if_spent(exc: Exception, info: activity.Info, lost: int) -> Exception:
    """`exc`, made non-retryable when it used up the step's own attempts: the engine allows
    `LOST_ALLOWANCE` more, for attempts lost with their workers, and those do not count here."""
    engine_max = info.retry_policy.maximum_attempts if info.retry_policy else 0
    if not engine_max or info.attempt - lost < engine_max - LOST_ALLOWANCE:
        return exc
    if isinstance(exc, ApplicationError | CancelledError) and (
            not isinstance(exc, ApplicationError) or exc.non_retryable):
        return exc
    return ApplicationError(exc.message if isinstance(exc, ApplicationError) else str(exc),
                            *(exc.details if isinstance(exc, ApplicationError) else ()), SPENT,
                            type=exc.type if isinstance(exc, ApplicationError) else type(exc).__name__,
                            non_retryable=True)


SPENT = {"tether": "retries exhausted"}
"""Last detail of the error that ended a step because its own attempts were used up."""


class LivenessInterceptor(Interceptor):
    """Worker interceptor: tether's step attempts heartbeat on their own and count lost attempts."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Inbound(next)


def idempotency_key(scope: str = "") -> str:
    """A key for the external effect of the running step call (see `tether.idempotency_key`)."""
    if not activity.in_activity():
        return f"tether-local-{uuid.uuid4().hex}"
    info = activity.info()
    source = "\x1f".join((info.workflow_namespace or "", info.workflow_id or "", info.workflow_run_id or "",
                          info.activity_id, scope))
    return "tether-" + hashlib.sha256(source.encode()).hexdigest()[:32]


__all__ = [
    "LIVE_EVERY",
    "PULSE",
    "LivenessInterceptor",
    "default_heartbeat_timeout",
    "idempotency_key",
    "in_flight",
    "publish",
    "streaming",
    "user_heartbeat",
]
