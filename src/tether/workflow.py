"""@workflow and the helpers that are safe to call inside workflow code.

Workflow code must be deterministic: it is replayed after a crash. Use these helpers for
time, randomness, sleeping and waiting; put I/O in steps. Each helper also works outside
a workflow (in plain scripts and unit tests) with the ordinary meaning.
"""

from __future__ import annotations

import asyncio
import inspect
import typing
import uuid as _uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from typing import Any, Generic, Literal, ParamSpec, TypeVar, overload

from pydantic import TypeAdapter, ValidationError

from tether import _registry, _runtime
from tether import budget as _budget
from tether._sensitive import withhold
from tether.budget import Budget
from tether.durations import Duration, parse_duration
from tether.errors import InvalidInput, UsageError

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

def in_workflow() -> bool:
    """True when running as workflow code on a Temporal worker."""
    return _runtime.current().in_workflow()


Versioning = Literal["pinned", "auto-upgrade"]
VERSIONING: tuple[Versioning, ...] = ("pinned", "auto-upgrade")
"""How runs of a workflow follow deploys of versioned workers (see `workflow(versioning=)`)."""


class Workflow(Generic[P, R]):
    """An async function made a durable workflow by `@workflow`.

    Start it with `tether.Client.start` or `tether run`. Awaited inside another workflow it
    runs as a child workflow; awaited anywhere else it runs directly, steps included.
    """

    def __init__(self, fn: Callable[P, Coroutine[Any, Any, R]], *, name: str,
                 passthrough: Sequence[str] = (), budget: Budget | None = None,
                 versioning: Versioning | None = None) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise UsageError(f"@workflow needs an `async def` function, {fn.__qualname__} is not")
        if isinstance(passthrough, str) or not all(isinstance(m, str) and m for m in passthrough):
            raise UsageError(f"workflow {name!r}: passthrough takes a list of module names, e.g. ['httpx']")
        self.fn = fn
        self.name = name
        self.passthrough = tuple(passthrough)
        if budget is not None and not isinstance(budget, Budget):
            raise UsageError(f"workflow {name!r}: budget takes tether.Budget(...), got {budget!r}")
        self.budget = budget
        if versioning not in (None, *VERSIONING):
            raise UsageError(f"workflow {name!r}: versioning={versioning!r}; use one of: {', '.join(VERSIONING)}")
        self.versioning = versioning
        self.hints = typing.get_type_hints(fn)
        params = list(inspect.signature(fn).parameters.values())
        if len(params) > 1 or any(p.kind not in _POSITIONAL for p in params):
            raise UsageError(
                f"workflow {name!r} takes {len(params)} parameters; a workflow takes one input "
                "(bundle several values in a pydantic model)"
            )
        self.input_name = params[0].name if params else None
        self.input_type: Any = self.hints.get(params[0].name, Any) if params else None
        self.return_type: Any = self.hints.get("return")
        self.defn: Any = _registry.define(self)  # the engine's definition (a Temporal workflow class)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        rt = _runtime.current()
        if rt.in_run():
            return rt.run_child(self, list(args) + list(kwargs.values()))
        return self._run_locally(*args, **kwargs)

    async def _run_locally(self, *args: Any, **kwargs: Any) -> R:
        token = _runtime.enter_local_run()
        try:
            return await self.run_body(*args, **kwargs)
        finally:
            _runtime.leave_local_run(token)

    async def run_body(self, *args: Any, **kwargs: Any) -> R:
        """The run itself, as every runtime runs it: the workflow function within its budget."""
        _budget.start_run(self.budget)
        try:
            return await self.fn(*args, **kwargs)
        finally:
            _budget.end_run()

    def validate_input(self, value: Any) -> list[Any]:
        """Validate a raw input (e.g. parsed JSON) and return the workflow's argument list.

        Raises:
            InvalidInput: The value does not match the input type; names the first bad field.
        """
        if self.input_name is None:
            if value not in (None, {}, []):
                raise InvalidInput(f"workflow {self.name!r} takes no input", workflow=self.name)
            return []
        if value is None:
            raise InvalidInput(
                f"workflow {self.name!r} needs an input ({_type_name(self.input_type)}); "
                "pass --input JSON",
                workflow=self.name,
            )
        try:
            return [TypeAdapter(self.input_type).validate_python(value)]
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            field = f"field {where!r}: " if where else ""
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise InvalidInput(
                f"invalid input for workflow {self.name!r}: {field}{err['msg']}{more}",
                workflow=self.name,
                field=where,
            ) from None

    def input_schema(self) -> dict[str, Any]:
        """JSON schema of the workflow's input (an empty object schema when it takes none)."""
        if self.input_name is None:
            return {"type": "object", "properties": {}}
        return TypeAdapter(self.input_type).json_schema()

    def __repr__(self) -> str:
        return f"<tether workflow {self.name!r}>"


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


@overload
def workflow(fn: Callable[P, Coroutine[Any, Any, R]], /) -> Workflow[P, R]: ...


@overload
def workflow(
    fn: None = None, /, *, name: str | None = None, passthrough: Sequence[str] = (), budget: Budget | None = None,
    versioning: Versioning | None = None,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Workflow[P, R]]: ...


def workflow(
    fn: Callable[P, Coroutine[Any, Any, R]] | None = None, /, *, name: str | None = None,
    passthrough: Sequence[str] = (), budget: Budget | None = None, versioning: Versioning | None = None,
) -> Workflow[P, R] | Callable[[Callable[P, Coroutine[Any, Any, R]]], Workflow[P, R]]:
    """Make an async function a durable workflow that runs on Temporal.

    The function takes at most one input (a pydantic model, dataclass or JSON type) and
    returns a serialisable result. Its code must be deterministic: use steps for I/O and
    the helpers in this module for time, randomness and waiting.

    Workflow code runs in Temporal's sandbox, which imports the workflow's module afresh for
    every run: module globals start over each run (patching one from a test does not reach
    the workflow), and a module that does I/O at import time (e.g. `httpx`) is refused.

    Args:
        fn: The async function.
        name: The workflow's name (default: the function's name).
        passthrough: Modules the sandbox should share with the worker instead of
            re-importing them per run, e.g. `["httpx"]` for a workflow file that imports
            httpx for its steps. Only for modules whose use in workflow code is deterministic.
        budget: Limits on what a run may spend on models and tools (`tether.Budget`); the
            call that would go over is not made (see `tether.budget`).
        versioning: On workers deployed with a build id (`TETHER_BUILD_ID`): "pinned" runs
            finish on the build they started on (keep its workers until they drain);
            "auto-upgrade" runs move to the current build (check with `tether replay`).
            Default: the worker's choice (auto-upgrade).

    Example:
        >>> @workflow
        ... async def greet(name: str) -> str:
        ...     return await shout(name)   # shout is a @step
    """

    def decorate(func: Callable[P, Coroutine[Any, Any, R]]) -> Workflow[P, R]:
        wf = Workflow(func, name=name or func.__name__, passthrough=passthrough, budget=budget,
                      versioning=versioning)
        _registry.register_workflow(wf)
        return wf

    if fn is not None:
        return decorate(fn)
    return decorate


async def sleep(duration: Duration) -> None:
    """Sleep durably: a workflow sleeping for days survives restarts (a Temporal timer)."""
    await _runtime.current().sleep(parse_duration(duration, what="sleep").total_seconds())


def now() -> datetime:
    """The current time (UTC); inside a workflow, the deterministic workflow time."""
    return _runtime.current().now()


def uuid4() -> _uuid.UUID:
    """A random UUID that stays the same when the workflow is replayed."""
    return _runtime.current().uuid4()


async def gather(*aws: Awaitable[T]) -> list[T]:
    """Run steps (or child workflows) in parallel and return their results in order.

    If one fails, the error is raised once all the others have finished, so no started
    step is left unobserved.
    """
    results = await asyncio.gather(*aws, return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return list(results)  # type: ignore[arg-type]


async def wait_for(condition: Callable[[], bool], *, timeout: Duration | None = None) -> bool:
    """Wait until `condition()` is true; return False if `timeout` passes first."""
    seconds = parse_duration(timeout, what="timeout").total_seconds() if timeout else None
    return await _runtime.current().wait(condition, seconds)


def patched(patch_id: str) -> bool:
    """Branch safely when changing the code of workflows that are already running.

    Returns True for runs that reach this point with the new code, False for runs whose
    history was recorded before the change. Outside a workflow it is always True.

    Example:
        >>> if tether.patched("vat-check-v2"):
        ...     await check_vat_v2(invoice)
        ... else:
        ...     await check_vat(invoice)
    """
    return _runtime.current().patched(patch_id)


def continue_as_new(*args: Any) -> typing.NoReturn:
    """End this run and start it afresh with new input, keeping the same workflow id.

    Use it in long-lived loops so the history stays small. Only valid inside a workflow.
    """
    _runtime.current().continue_as_new(list(args))


def heartbeat(*details: Any) -> None:
    """Tell the engine a long step is still alive (see `@step(heartbeat=...)`).

    Does nothing outside a step attempt. Details leave the step's zone (workflow code and
    `tether show` read them), so a sensitive value the step revealed is cut from them.
    """
    _runtime.current().heartbeat(*withhold(details))


def progress(message: str, *, done: float | None = None, total: float | None = None) -> None:
    """Tell the run's watchers how far the running step has got, e.g. `tether.progress(
    "parsed 40 of 120 pages", done=40, total=120)`.

    Watchers (`Run.events()`, `tether run`, Studio's run page) see the latest progress of each
    step within a fraction of a second; it is not kept in the run's history. Does nothing
    outside a step attempt. Like heartbeat details, a sensitive value the step revealed is cut
    from the message.

    Raises:
        UsageError: `message` is not text, or `done`/`total` are not numbers.
    """
    if not isinstance(message, str):
        raise UsageError(f"progress: message must be text, got {type(message).__name__}")
    for name, value in (("done", done), ("total", total)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise UsageError(f"progress: {name} must be a number, got {value!r}")
    rt = _runtime.current()
    if rt.attempt() is not None:
        rt.publish("progress", {"message": withhold(message), "done": done, "total": total})


def idempotency_key(scope: str = "") -> str:
    """A key for the external effect of the running step call, to give the outside system.

    Completed steps never run again, but an attempt cut off in the middle of its effect
    (its worker died after charging the card, before reporting) is retried. Pass this key
    to the payment, booking or mail API so it ignores the repeat: it is the same for every
    attempt of this step call in this run and differs between calls and between runs.
    Use `scope` when one step makes several effects ("charge", "receipt").

    Outside a step attempt (a step called directly in a unit test) it returns a new
    random key on each call.

    Example:
        >>> @tether.step
        ... def charge(order: Order) -> str:
        ...     return payments.charge(order.total, idempotency_key=tether.idempotency_key())
    """
    return _runtime.current().idempotency_key(scope)


def attempt() -> int:
    """Which attempt of the current step this is: 1 for the first try, 2 for the first retry, ...

    Handy to log, or to take a different path on a late retry. Outside a step attempt on a
    worker (a step called directly, workflow code) it is 1.

    Example:
        >>> @tether.step(attempts=5)
        ... async def fetch(url: str) -> str:
        ...     timeout = 5 * tether.attempt()   # wait longer on each retry
        ...     return await get(url, timeout=timeout)
    """
    attempt = _runtime.current().attempt()
    return attempt.attempt if attempt is not None else 1


def run_id() -> str | None:
    """The workflow id of the current run (inside a workflow or step), else None."""
    return _runtime.current().run_id()
