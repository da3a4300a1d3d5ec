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


async def queue_state(client: TemporalClient, namespace: str, queue: str) -> QueueState:
    """The config, pollers and stats of the activity queue `queue`."""
    resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=namespace, task_queue=TaskQueue(name=queue), task_queue_type=_ACTIVITY,
        report_config=True, report_stats=True))
    limit = resp.config.queue_rate_limit
    override = limit.rate_limit.requests_per_second if limit.HasField("rate_limit") else None
    reason = limit.metadata.reason if limit.HasField("metadata") else ""
    until = cooldown_until(reason) if override is not None else None
    recent = datetime.now(UTC).timestamp() - 90
    return QueueState(queue=queue, override=override, reason=reason, cooling_until=until,
                      workers=sum(1 for p in resp.pollers if p.last_access_time.ToSeconds() >= recent),
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


async def apply_rate(client: TemporalClient, namespace: str, queue: str, rate: float | None) -> datetime | None:
    """Give `queue` its key's rate, unless a cooldown runs (then: its deadline) or the rate is set.

    The rate lives in the queue's config on the server, set by any worker of the key: measured
    on Temporal 1.32, a rate sent with the polls of two worker processes did not hold (each
    poller's value resets the server's limiter), while the configured one does.
    """
    state = await queue_state(client, namespace, queue)
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


HEADROOM = 0.92
"""Share of a key's rate the workers pace themselves to: independent workers' calls can meet
within one second, and a provider counting a rolling second must never see more than the rate."""


@dataclass
class Pacer:
    """Spaces one worker's calls of a key at its share of the key's rate.

    The engine's limiter lets a burst of up to a second's worth of calls through at once (to
    an idle key, and again after a cooldown), which a provider counting a rolling second
    refuses; each worker therefore also spaces the calls it was given: `workers / rate`
    seconds apart (a little more, see `HEADROOM`), with `workers` the key's pollers the engine reports.
    """

    rate: float
    workers: int = 1
    _next: float = 0.0

    async def wait(self) -> None:
        """Return when this worker's next call of the key may go."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        at = max(now, self._next)
        self._next = at + max(self.workers, 1) / (self.rate * HEADROOM)
        if at > now:
            await asyncio.sleep(at - now)


_pacers: dict[str, Pacer] = {}


def pacer(queue: str) -> Pacer | None:
    """The pacer of a key's queue in this process (None for a queue without a rate)."""
    return _pacers.get(queue)


def pace(queue: str, rate: float | None, workers: int) -> None:
    """Keep `queue`'s pacer at `rate` shared by `workers` workers (no pacer without a rate)."""
    if rate is None:
        _pacers.pop(queue, None)
        return
    found = _pacers.setdefault(queue, Pacer(rate))
    found.rate, found.workers = rate, max(workers, 1)


async def watch_cooldowns(client: TemporalClient, namespace: str, rates: dict[str, float | None]) -> None:
    """Keep each queue of `rates` at its key's rate, and lift cooldowns when they end, whichever
    worker set them (runs until cancelled)."""
    while True:
        due: datetime | None = None
        for queue, rate in rates.items():
            try:
                until = await apply_rate(client, namespace, queue, rate)
                pace(queue, rate, (await queue_state(client, namespace, queue)).workers)
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
        paced = pacer(activity.info().task_queue)
        if paced is not None:  # this worker's share of the key's rate
            await paced.wait()
        try:
            return await super().execute_activity(input)
        except Exception as exc:
            refused = asked_to_wait(exc)
            queue = activity.info().task_queue
            if refused is not None and refused.retry_after and _runtime.queue_limit(queue) is not None:
                why = f"HTTP 429 from {refused.model} (Retry-After {refused.retry_after:g}s)"
                with contextlib.suppress(RPCError):  # the attempt's own failure is what matters here
                    await cool(self.owner.client, self.owner.namespace, queue, refused.retry_after, why)
            raise


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
