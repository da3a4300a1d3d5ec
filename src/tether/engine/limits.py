"""Rate limits enforced by the engine: a task queue per key, and cooldowns after a provider's 429.

Runs on workers (which poll each key's queue at the key's rate, cool a key when a step attempt
gets a 429 with Retry-After, and lift cooldowns whose time has passed) and in the CLI (`tether
limits`). A cooldown is the queue's rate set to 0 through Temporal's task-queue config, with the
deadline written in its reason, so any worker of the key can lift it, also when the worker that
set it has died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import RateLimit as RateLimitProto
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, UpdateTaskQueueConfigRequest
from temporalio.client import Client as TemporalClient
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from tether import _runtime, limits
from tether.errors import ModelError
from tether.llm import STEP_NAME
from tether.step import Step

log = logging.getLogger("tether.limits")

COOLDOWN = "tether cooldown until "
"""How the reason of a cooldown starts; the deadline (ISO 8601, UTC) follows, then why."""
WATCH_EVERY = 1.0
"""Seconds between a worker's looks at its keys' cooldowns (it wakes at a known deadline)."""
_ACTIVITY = TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY


def served_keys(zone: str | None, steps: Sequence[Step[Any, Any]]) -> dict[str, list[Step[Any, Any]]]:
    """The rate-limit keys a worker of `zone` serves, each with the steps that wait in its queue.

    A step's own key is served in the step's zone; model keys where model calls run (the
    main queue), by the model step.
    """
    keys: dict[str, list[Step[Any, Any]]] = {}
    for s in steps:
        if s.options.limit is not None and s.options.runs_on == zone and not s.options.any_zone:
            keys.setdefault(s.options.limit, []).append(s)
    model_step = next((s for s in steps if s.name == STEP_NAME), None)
    if zone is None and model_step is not None:
        for limit in limits.declared():
            if limit.key is not None and limits.is_model_key(limit.key):
                served = keys.setdefault(limit.key, [])
                if model_step not in served:
                    served.append(model_step)
    return keys


# ---- cooldowns ---------------------------------------------------------------------------


def cooldown_reason(until: datetime, why: str) -> str:
    """The reason recorded with a cooldown: its deadline, then why."""
    return f"{COOLDOWN}{until.astimezone(UTC).isoformat(timespec='milliseconds')}; {why}"


def cooldown_until(reason: str) -> datetime | None:
    """The deadline written in a cooldown's reason (None for any other reason)."""
    if not reason.startswith(COOLDOWN):
        return None
    stamp = reason[len(COOLDOWN):].split(";", 1)[0].strip()
    try:
        return datetime.fromisoformat(stamp)
    except ValueError:
        return None


@dataclass(frozen=True)
class QueueState:
    """What the engine says about a key's queue: its override, cooldown, workers and traffic."""

    queue: str
    override: float | None
    """The rate set through the task-queue config (a cooldown sets 0), None when unset."""
    reason: str
    cooling_until: datetime | None
    workers: int
    backlog: int
    dispatch_rate: float
    add_rate: float
    pollers: tuple[str, ...] = ()
    """Identities of the workers counted in `workers`."""


async def queue_state(client: TemporalClient, namespace: str, queue: str, *, stats: bool = True) -> QueueState:
    """The config, pollers and (with `stats`; else zeros) traffic of the activity queue `queue`."""
    resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=namespace, task_queue=TaskQueue(name=queue), task_queue_type=_ACTIVITY,
        report_config=True, report_stats=stats))
    limit = resp.config.queue_rate_limit
    override = limit.rate_limit.requests_per_second if limit.HasField("rate_limit") else None
    reason = limit.metadata.reason if limit.HasField("metadata") else ""
    until = cooldown_until(reason) if override is not None else None
    recent = datetime.now(UTC).timestamp() - 90
    pollers = tuple(p.identity for p in resp.pollers if p.last_access_time.ToSeconds() >= recent)
    return QueueState(queue=queue, override=override, reason=reason, cooling_until=until,
                      workers=len(pollers), pollers=pollers,
                      backlog=resp.stats.approximate_backlog_count, dispatch_rate=resp.stats.tasks_dispatch_rate,
                      add_rate=resp.stats.tasks_add_rate)


async def _set_rate(client: TemporalClient, namespace: str, queue: str, rate: float | None, reason: str,
                    identity: str) -> None:
    update = UpdateTaskQueueConfigRequest.RateLimitUpdate(reason=reason)
    if rate is not None:  # absent: the override goes and the workers' own rate applies again
        update.rate_limit.CopyFrom(RateLimitProto(requests_per_second=rate))
    await client.workflow_service.update_task_queue_config(UpdateTaskQueueConfigRequest(
        namespace=namespace, identity=identity, task_queue=queue, task_queue_type=_ACTIVITY,
        update_queue_rate_limit=update))


async def cool(client: TemporalClient, namespace: str, queue: str, seconds: float, why: str) -> datetime:
    """Pause `queue` for every worker for `seconds` (a later cooldown already set is kept).

    Returns:
        The deadline now in force.
    """
    until = datetime.now(UTC) + timedelta(seconds=seconds)
    state = await queue_state(client, namespace, queue)
    if state.cooling_until is not None and state.cooling_until >= until:
        return state.cooling_until
    await _set_rate(client, namespace, queue, 0.0, cooldown_reason(until, why), client.identity)
    log.warning("rate limit %s cooled for %.1fs (until %s): %s", _runtime.queue_limit(queue), seconds,
                until.strftime("%H:%M:%S"), why)
    return until


RATE = "tether rate limit "
"""How the reason of a key's own rate starts."""


async def apply_rate(client: TemporalClient, namespace: str, queue: str, rate: float | None,
                     state: QueueState | None = None) -> datetime | None:
    """Give `queue` its key's rate, unless a cooldown runs (then: its deadline) or the rate is set.

    `state`: the queue as just read (read here when not given).

    The rate lives in the queue's config on the server, set by any worker of the key: measured
    on Temporal 1.32, a rate sent with the polls of two worker processes did not hold (each
    poller's value resets the server's limiter), while the configured one does.
    """
    if state is None:
        state = await queue_state(client, namespace, queue, stats=False)
    if state.cooling_until is not None and state.cooling_until > datetime.now(UTC):
        return state.cooling_until
    if state.override == rate if rate is not None else state.override is None:
        return None
    if state.override is not None and state.cooling_until is None and not state.reason.startswith(RATE):
        return None  # set by someone else (an operator pausing the key): theirs to lift
    key = _runtime.queue_limit(queue)
    if rate is None:
        await _set_rate(client, namespace, queue, None, f"{RATE}{key}: none", client.identity)
    else:
        await _set_rate(client, namespace, queue, rate, f"{RATE}{key}: {rate:g}/s", client.identity)
    if state.cooling_until is not None:
        log.info("rate limit %s: cooldown over", key)
    return None


WINDOW = 1.0
"""Seconds a provider counts a key's rate over (a rolling second: "20/s" = at most 20 in any 1 s)."""
REACH = 0.5
"""Seconds after it went within which a call is taken to have reached the provider when nothing
better is known (the provider client reported neither its request written nor its answer)."""
JITTER = 0.05
"""Seconds by which one call's way to the provider may take longer than another's, after its
request was written: a call counts until `JITTER` after its request left, or until its answer if
that came sooner (an answer proves the request arrived). Calls delayed alike keep their spacing."""
SPREAD = 0.3
"""Calls of a key leave one worker at least `SPREAD * window / share` apart: a burst let go at once
would be handled by the worker together, and reach the provider bunched. Measured with 2 workers at
20/s (`benchmarks.limits`, free start): spacing calls a whole `window / share` apart gave 81-82% of the
rate, 0.3 of it 87-90%, with no second over the limit either way."""
FRESH = 0.25
"""Seconds a worker sending calls of a key trusts its last look at the key's cooldown and workers."""
STALE = 1.0
"""Seconds after which a call of a key waits for a new look at it before it goes (see `refresh`)."""


class Call:
    """One call of a key through a worker's pacer: when it went, and what the provider client
    reported of it (loop times; `math.inf` until known)."""

    __slots__ = ("_pacer", "answered_at", "sent_at", "went")

    def __init__(self, pacer: Pacer, went: float) -> None:
        self.went = went
        self.sent_at = math.inf
        self.answered_at = math.inf
        self._pacer = pacer

    def sent(self) -> None:
        """The request has been written (its place in the provider's second is near; of two
        requests, the later one counts)."""
        self.sent_at = self._pacer.now()

    def answered(self) -> None:
        """The answer has begun to arrive (the request reached the provider before now)."""
        self._pacer.done(self)

    @property
    def reached(self) -> float:
        """When the call is taken to have reached the provider, at the latest."""
        if self.sent_at < math.inf:
            return min(self.answered_at, self.sent_at + JITTER)
        return min(self.answered_at, self.went + REACH)


class Pacer:
    """One worker's share of a key's rate, counted the way a provider counts: per rolling second.

    The engine's limiter averages the rate over all workers but lets up to a second's worth of
    calls through at once (to an idle key, and again after a cooldown), and two workers' calls
    can meet in the provider's second; so each worker lets at most `share` calls of the key
    reach the provider within any `window` (its part of the rate: `rate / workers`, rounded
    down, at least 1). A call counts from when it is let go until a window after it reached the
    provider (`Call.reached`): `JITTER` after the provider client wrote its request, or its
    answer if sooner; a slow event loop between the pacer and the request cannot squeeze more
    calls into the provider's second. A call whose client reports nothing is taken to have
    arrived within `REACH` of going. Calls go at least `SPREAD * window / share` apart. `hold`
    stops every call until a deadline (a cooldown).
    """

    def __init__(self, rate: float, workers: int = 1) -> None:
        self.rate = rate
        self.workers = max(workers, 1)
        self.looked = -math.inf
        """Loop time of the last look at the key's queue on the server (see `refresh`)."""
        self._until = 0.0
        self._last = -math.inf  # when the last call went
        self._calls: list[Call] = []  # oldest first
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Event()

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a worker started again in another event loop (tests)
            self._loop, self._lock, self._changed, self._calls = loop, asyncio.Lock(), asyncio.Event(), []
            self.looked, self._until, self._last = -math.inf, 0.0, -math.inf
        return loop

    def now(self) -> float:
        """The pacer's clock (its event loop's)."""
        return self._bind().time()

    @property
    def share(self) -> int:
        """Calls this worker may send within one `window`."""
        return max(1, math.floor(self.rate * WINDOW / self.workers + 1e-9))

    @property
    def window(self) -> float:
        """Seconds over which `share` is counted (longer than `WINDOW` for rates below one per worker)."""
        return max(WINDOW, self.share * self.workers / self.rate)

    def set(self, rate: float, workers: int) -> None:
        """Take a new rate or number of workers into account from the next call on."""
        self.rate, self.workers = rate, max(workers, 1)
        self._changed.set()

    def hold(self, seconds: float) -> None:
        """Let no call go for `seconds` from now (a later hold already set is kept)."""
        self._until = max(self._until, self._bind().time() + seconds)
        self._changed.set()

    async def wait(self) -> Call:
        """Return when this worker's next call of the key may go; pass the result to `done`."""
        loop = self._bind()
        async with self._lock:  # first come, first served
            while True:
                now = loop.time()
                horizon = now - self.window
                self._calls = [c for c in self._calls if c.reached > horizon]
                due = max(self._until, self._last + SPREAD * self.window / self.share)
                if now >= due:
                    if len(self._calls) < self.share:
                        self._last = now
                        call = Call(self, now)
                        self._calls.append(call)
                        return call
                    # the oldest one to stop counting: at a known time, or sooner when a report comes
                    due = max(due, min(c.reached for c in self._calls) + self.window)
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), max(0.0, due - now))

    def done(self, call: Call) -> None:
        """The answer to `call` came back (so the request reached the provider before now)."""
        call.answered_at = min(call.answered_at, self._bind().time())
        self._changed.set()


_pacers: dict[str, Pacer] = {}


def pacer(queue: str) -> Pacer | None:
    """The pacer of a key's queue in this process (None for a queue without a rate)."""
    return _pacers.get(queue)


def pace(queue: str, rate: float | None, workers: int) -> Pacer | None:
    """Keep `queue`'s pacer at `rate` shared by `workers` workers (no pacer without a rate)."""
    if rate is None:
        _pacers.pop(queue, None)
        return None
    found = _pacers.get(queue)
    if found is None:
        found = _pacers[queue] = Pacer(rate, workers)
    else:
        found.set(rate, workers)
    return found


def heed(queue: str, state: QueueState, identity: str) -> None:
    """Bring `queue`'s pacer up to date with what the engine says: workers and cooldown.

    This worker (`identity`) counts itself also before the engine lists it (its first poll).
    """
    found = _pacers.get(queue)
    if found is None:
        return
    found.set(found.rate, state.workers + (identity not in state.pollers))
    found.looked = asyncio.get_running_loop().time()
    if state.cooling_until is not None:
        left = (state.cooling_until - datetime.now(UTC)).total_seconds()
        if left > 0:
            found.hold(left)


def join(queue: str, rate: float | None, state: QueueState) -> None:
    """Set up this worker's pacer of `queue` as it starts polling it beside `state.workers` others.

    The others count this worker in their shares at their next look (`WATCH_EVERY` at most),
    so when there are any, this worker sends nothing until they have had that look.
    """
    found = pace(queue, rate, state.workers + 1)
    if found is not None and state.workers:
        found.hold(WATCH_EVERY + FRESH)


_looking: dict[str, asyncio.Task[None]] = {}


async def refresh(client: TemporalClient, namespace: str, queue: str) -> None:
    """Keep this worker's look at `queue` on the server fresh: a cooldown another worker set, or
    a worker that joined, is heeded by the calls that go `FRESH` seconds (and one look) later.

    A look older than `FRESH` is renewed in the background while calls keep going (a call does
    not wait for the server's answer, ~70 ms under load); only a look older than `STALE` (a key
    idle for a while) is awaited before the call goes.
    """
    found = _pacers.get(queue)
    if found is None:
        return
    age = asyncio.get_running_loop().time() - found.looked
    if age < FRESH:
        return
    task = _looking.get(queue)
    if task is None or task.done():  # one look at a time, shared by the calls that want it
        task = _looking[queue] = asyncio.create_task(_look(client, namespace, queue))
    if age >= STALE:
        await asyncio.shield(task)


async def _look(client: TemporalClient, namespace: str, queue: str) -> None:
    try:
        heed(queue, await queue_state(client, namespace, queue, stats=False), client.identity)
    except RPCError as exc:  # the server is away: the last look stands
        log.debug("cannot read the state of %s: %s", queue, exc)


async def watch_cooldowns(client: TemporalClient, namespace: str, rates: dict[str, float | None]) -> None:
    """Keep each queue of `rates` at its key's rate, and lift cooldowns when they end, whichever
    worker set them (runs until cancelled)."""
    while True:
        due: datetime | None = None
        for queue, rate in rates.items():
            try:
                state = await queue_state(client, namespace, queue, stats=False)
                until = await apply_rate(client, namespace, queue, rate, state)
                pace(queue, rate, state.workers)
                heed(queue, state, client.identity)
            except RPCError as exc:  # the server is away: look again later
                log.debug("cannot read the cooldown of %s: %s", queue, exc)
                continue
            if until is not None and (due is None or until < due):
                due = until
        wait = WATCH_EVERY
        if due is not None:
            wait = min(wait, max(0.02, (due - datetime.now(UTC)).total_seconds()))
        await asyncio.sleep(wait)


def asked_to_wait(exc: BaseException) -> ModelError | None:
    """The provider's 429 with Retry-After behind a step attempt's failure, if it was one."""
    cause = exc.__cause__ if isinstance(exc, ApplicationError) else exc
    if isinstance(cause, ModelError) and cause.status == 429 and cause.retry_after \
            and math.isfinite(cause.retry_after) and cause.retry_after > 0:
        return cause
    return None


class CooldownInterceptor(Interceptor):
    """Worker interceptor: an attempt in a key's queue that gets a 429 with Retry-After cools the key."""

    def __init__(self, client: TemporalClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _Cooling(next, self)


class _Cooling(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, owner: CooldownInterceptor) -> None:
        super().__init__(next)
        self.owner = owner

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        queue = activity.info().task_queue
        paced = pacer(queue)
        call: Call | None = None
        if paced is not None:  # this worker's share of the key's rate, after any cooldown
            await refresh(self.owner.client, self.owner.namespace, queue)
            call = await paced.wait()
        try:
            if call is None:
                return await super().execute_activity(input)
            with limits.marking(call):  # a model call reports its request written and its answer
                return await super().execute_activity(input)
        except Exception as exc:
            refused = asked_to_wait(exc)
            if refused is not None and refused.retry_after and _runtime.queue_limit(queue) is not None:
                if paced is not None:  # this worker's next calls wait at once, before the engine knows
                    paced.hold(refused.retry_after)
                why = f"HTTP 429 from {refused.model} (Retry-After {refused.retry_after:g}s)"
                with contextlib.suppress(RPCError):  # the attempt's own failure is what matters here
                    await cool(self.owner.client, self.owner.namespace, queue, refused.retry_after, why)
            raise
        finally:
            if paced is not None and call is not None:
                paced.done(call)


# ---- listing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyRow:
    """One rate-limit key as `tether limits` shows it: in one zone, with the engine's view of its queue."""

    key: str
    zone: str | None
    limit: limits.RateLimit
    used_by: str
    """What waits in it: "model calls", or the steps' names."""
    state: QueueState


async def key_rows(client: TemporalClient, namespace: str, base: str,
                   steps: Sequence[Step[Any, Any]]) -> list[KeyRow]:
    """Every declared key, per zone that serves it, with its queue's config, workers and traffic."""
    rows = []
    zones = sorted({s.options.runs_on for s in steps if s.options.limit}, key=lambda z: z or "")
    wanted = [(key, zone, served) for zone in [None, *[z for z in zones if z]]
              for key, served in served_keys(zone, steps).items()]
    for key, zone, served in sorted(wanted, key=lambda w: (w[0], w[1] or "")):
        limit = limits.get(key)
        if limit is None:
            continue
        names = [s.name for s in served if s.name != STEP_NAME]
        used_by = ", ".join(([ "model calls"] if limits.is_model_key(key) else []) + names)
        state = await queue_state(client, namespace, _runtime.limit_queue(_runtime.zone_queue(base, zone), key))
        rows.append(KeyRow(key=key, zone=zone, limit=limit, used_by=used_by, state=state))
    return rows
