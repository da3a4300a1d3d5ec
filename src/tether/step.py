"""@step: a unit of work with its retry policy, timeouts and zone.

Inside a workflow, calling a step schedules a Temporal activity; anywhere else it simply
runs the function, so business rules can be unit-tested without a server.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, overload

from tether import _registry, _runtime, limits
from tether.durations import Duration, parse_duration
from tether.errors import StepFailed, UsageError
from tether.limits import RateLimit

if TYPE_CHECKING:
    from tether.escalation import Escalation

P = ParamSpec("P")
R = TypeVar("R")

_ZONE_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class RetryPolicy:
    """How a failing step is retried.

    Attributes:
        max_attempts: Attempts in all, the first included (1 = never retry).
        initial_interval: Wait before the first retry.
        max_interval: Upper bound on the wait between attempts.
        backoff: Multiplier applied to the wait after each attempt.
    """

    max_attempts: int = 3
    initial_interval: Duration = "1s"
    max_interval: Duration = "1m"
    backoff: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise UsageError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.backoff < 1:
            raise UsageError(f"backoff must be at least 1.0, got {self.backoff}")
        parse_duration(self.initial_interval, what="initial_interval")
        parse_duration(self.max_interval, what="max_interval")


@dataclass(frozen=True)
class StepOptions:
    """The resolved options of a step, as the engine uses them."""

    retry: RetryPolicy
    timeout: timedelta
    heartbeat: timedelta | None
    non_retryable: tuple[str, ...]
    runs_on: str | None
    on_failure: Escalation | None = None
    any_zone: bool = False
    """Served by every worker, whatever its zone (tether's MCP steps: each call names its zone)."""
    limit: str | None = None
    """The key of the rate limit the calls obey (`tether.limits`): they wait in that key's queue."""
    local: bool = False
    """Run as a Temporal local activity, on the worker running the workflow code (`@step(local=True)`)."""


class Step(Generic[P, R]):
    """A function made durable by `@step`; `R` is its result (an async step's awaited result).

    Inside a workflow a call is scheduled as a Temporal activity and awaited, sync step or
    async, so type checkers see every call as awaitable. Outside a workflow the call runs
    the function directly: an async step returns a coroutine, a sync step its value (call
    `step.fn(...)` where a type checker should see the plain value, e.g. in unit tests).
    """

    def __init__(self, fn: Callable[P, R] | Callable[P, Awaitable[R]], *, name: str, options: StepOptions) -> None:
        self.fn = fn
        self.name = name
        self.options = options
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
        self.hints = _type_hints(fn, what=f"step {name!r}")
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        rt = _runtime.current()
        if rt.in_run():
            return self._scheduled(rt, args, kwargs)
        return self.fn(*args, **kwargs)  # type: ignore[return-value]  # a sync step's plain value, outside runs

    async def _scheduled(self, rt: _runtime.Runtime, args: Sequence[Any], kwargs: dict[str, Any]) -> R:
        """Run the call through the runtime; a final failure goes to the step's `on_failure`."""
        try:
            result: R = await rt.execute_step(self, args, kwargs)
        except StepFailed as failed:
            if self.options.on_failure is None:
                raise
            return await self.options.on_failure.handle(self, args, kwargs, failed)  # type: ignore[no-any-return]
        return result

    def bind_args(self, args: Sequence[Any], kwargs: dict[str, Any]) -> list[Any]:
        """Turn a call's arguments into the positional list sent to the activity."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise UsageError(f"step {self.name!r} called with wrong arguments: {exc}") from None
        bound.apply_defaults()
        return list(bound.args) + list(bound.kwargs.values())

    @property
    def return_type(self) -> Any:
        """The annotated return type (None when unannotated)."""
        return self.hints.get("return")

    def __repr__(self) -> str:
        zone = f" runs_on={self.options.runs_on!r}" if self.options.runs_on else ""
        return f"<tether step {self.name!r}{zone}>"


class SyncStep(Step[P, R]):
    """A step made from a plain `def`: `step.fn(...)` returns the result itself."""

    fn: Callable[P, R]


class AsyncStep(Step[P, R]):
    """A step made from an `async def`: `step.fn(...)` returns a coroutine of the result."""

    fn: Callable[P, Awaitable[R]]


class StepDecorator(Protocol):
    """What `@step(...)` with options returns: it makes a function a `Step`."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncStep[P, R]: ...  # type: ignore[overload-overlap]

    @overload
    def __call__(self, fn: Callable[P, R], /) -> SyncStep[P, R]: ...


@overload
def step(fn: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncStep[P, R]: ...  # type: ignore[overload-overlap]


@overload
def step(fn: Callable[P, R], /) -> SyncStep[P, R]: ...


@overload
def step(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    attempts: int | RetryPolicy = 3,
    timeout: Duration = "5m",
    heartbeat: Duration | None = None,
    non_retryable: Sequence[type[BaseException]] = (),
    runs_on: str | None = None,
    on_failure: Escalation | None = None,
    rate_limit: RateLimit | None = None,
    local: bool = False,
) -> StepDecorator: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    attempts: int | RetryPolicy = 3,
    timeout: Duration = "5m",
    heartbeat: Duration | None = None,
    non_retryable: Sequence[type[BaseException]] = (),
    runs_on: str | None = None,
    on_failure: Escalation | None = None,
    rate_limit: RateLimit | None = None,
    local: bool = False,
) -> Step[Any, Any] | StepDecorator:
    """Make a function a durable step.

    Args:
        fn: The function (sync or async). Its parameters and return value must be
            serialisable: pydantic models, dataclasses or JSON types.
        name: The step's name in histories and traces (default: the function's name).
        attempts: Attempts in all, the first included (an int, 1 = never retry), or a
            `RetryPolicy` for the backoff too.
        timeout: Limit on one attempt ("30s", "5m", a `timedelta`).
        heartbeat: Left unset, every attempt heartbeats on its own and one whose worker
            died is retried within the default heartbeat timeout (10 s,
            `TETHER_HEARTBEAT_TIMEOUT`). If set, the step beats itself: an attempt that has
            not called `tether.heartbeat()` for this long is considered lost and retried
            (for steps that can hang without their worker dying).
        non_retryable: Exception types that fail the step at once, without retrying.
        runs_on: Zone whose workers run this step (e.g. "vault"); default: the
            workflow's own workers.
        on_failure: What to do when the step fails for good, e.g. `tether.escalate()` to
            ask a person to retry it, supply its result, or fail the run.
        rate_limit: A `tether.RateLimit` shared by every worker: calls wait in the engine
            until the key allows them (default key: the step's name).
        local: Run the step as a Temporal *local activity*: on the worker that runs the
            workflow code, right after the workflow task that calls it, with no task queue
            round trip through the server. Its result is recorded in the run's history with
            the next workflow task, so it never runs again on replay, and its retries follow
            `attempts`. Meant for short deterministic steps (validation, a rule, a
            computation): a few per run cost about one server round trip less each. The
            trade-off: a local step has no zone (`runs_on`), no rate limit (no queue to pace),
            no heartbeats (`heartbeat=`; a lost worker is noticed only by the workflow task's
            timeout, and the attempt runs again elsewhere), its retries happen inside the
            workflow's tasks (long backoffs become timers), and Temporal lists it as a marker
            in the history, not as an activity task. Those combinations are refused.

    Example:
        >>> @step(attempts=5, timeout="30s")
        ... def check_tax_id(tax_id: str) -> bool:
        ...     return tax_id.startswith("DE")
    """

    def decorate(func: Callable[..., Any]) -> Step[Any, Any]:
        if not callable(func):
            raise UsageError(f"@step decorates a function, got {func!r}")
        if local:
            _check_local(name or func.__name__, runs_on=runs_on, rate_limit=rate_limit, heartbeat=heartbeat)
        options = StepOptions(
            retry=attempts if isinstance(attempts, RetryPolicy) else _attempts(attempts),
            timeout=parse_duration(timeout, what="timeout"),
            heartbeat=parse_duration(heartbeat, what="heartbeat") if heartbeat else None,
            non_retryable=_error_names(non_retryable),
            runs_on=check_zone(runs_on) if runs_on is not None else None,
            on_failure=_check_on_failure(on_failure),
            limit=_declare_limit(rate_limit, name or func.__name__),
            local=bool(local),
        )
        if options.timeout <= timedelta(0):
            raise UsageError("timeout must be positive, e.g. timeout='30s'")
        kind = AsyncStep if inspect.iscoroutinefunction(func) else SyncStep
        s = kind(func, name=name or func.__name__, options=options)
        _registry.register_step(s)
        return s

    if fn is not None:
        return decorate(fn)
    return decorate  # type: ignore[return-value]  # the overloads of StepDecorator describe it


S = TypeVar("S", bound="Step[Any, Any]")


def on_every_queue(s: S) -> S:
    """`s`, served by every worker whatever its queue, and routed to a zone per call.

    For tether's own steps whose zone is chosen by each call (an MCP server's tools run in
    the server's zone), used as a decorator above `@step`.
    """
    out = type(s)(s.fn, name=s.name, options=replace(s.options, any_zone=True))
    _registry.register_step(out)
    return out


def _check_local(step_name: str, **options: Any) -> None:
    """Refuse what a local step cannot do: it runs on the workflow's own worker, outside any queue."""
    why = {"runs_on": "a local step runs on the worker that runs the workflow code, in no zone",
           "rate_limit": "a local step is not dispatched through a queue the engine could pace",
           "heartbeat": "local activities do not heartbeat"}
    for option, value in options.items():
        if value is not None:
            raise UsageError(f"step {step_name!r}: local=True cannot be combined with {option}= ({why[option]}); "
                             f"drop {option}= or local=True")


def _declare_limit(value: Any, step_name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, RateLimit):
        raise UsageError(f"rate_limit takes tether.RateLimit(per_second=..., key=...), got {value!r}")
    key = value.key or step_name
    limits.declare(replace(value, key=key))
    return key


def _check_on_failure(value: Any) -> Escalation | None:
    from tether.escalation import Escalation

    if value is None or isinstance(value, Escalation):
        return value
    raise UsageError(f"on_failure takes tether.escalate(...), got {value!r}")


def _attempts(value: int) -> RetryPolicy:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"attempts: expected an int (attempts in all) or a RetryPolicy, got {value!r}")
    return RetryPolicy(max_attempts=value)


def _error_names(types: Sequence[type[BaseException]]) -> tuple[str, ...]:
    names = []
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise UsageError(f"non_retryable takes exception classes, got {t!r}")
        names.append(t.__name__)
    return tuple(names)


def check_zone(zone: str) -> str:
    """Validate a zone name: lowercase letters, digits, '-' and '_'."""
    if not zone or not set(zone) <= _ZONE_CHARS:
        raise UsageError(
            f"zone name {zone!r} is not valid; use lowercase letters, digits, '-' or '_'"
        )
    return zone


def _type_hints(fn: Callable[..., Any], *, what: str) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception as exc:  # NameError for a forward reference that does not resolve
        raise UsageError(f"{what}: cannot resolve its type hints ({exc})") from None
