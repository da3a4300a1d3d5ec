"""Escalation: hand a failure to a person, who retries the step, supplies its result or fails the run."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar, overload

from pydantic import BaseModel, Field

from tether import _runtime
from tether.durations import Duration, parse_duration
from tether.errors import StepFailed, TetherError, UsageError
from tether.human import NO_DEFAULT, _ask, _json

if TYPE_CHECKING:
    from tether.step import Step

T = TypeVar("T")


class RetryStep(BaseModel):
    """Escalation answer: run the step once more."""

    action: Literal["retry"]


class UseValue(BaseModel, Generic[T]):
    """Escalation answer: use this value as the step's result."""

    action: Literal["use"]
    value: T


class FailRun(BaseModel):
    """Escalation answer: give up; the run fails with this reason."""

    action: Literal["fail"]
    reason: str = Field(min_length=1)


def escalation_schema(result_type: Any, *, can_retry: bool) -> Any:
    """The answer type of an escalation: retry (if possible), use a value, or fail."""
    use: Any = UseValue[result_type if result_type is not None else Any]  # type: ignore[misc]
    options: tuple[Any, ...] = (RetryStep, use, FailRun) if can_retry else (use, FailRun)
    union = options[0]
    for opt in options[1:]:
        union = union | opt
    return Annotated[union, Field(discriminator="action")]


class Escalation:
    """What to do when a step fails for good: ask a person (see `escalate`)."""

    def __init__(self, *, question: str | None, assignee: str | None, timeout: Duration | None) -> None:
        self.question = question
        self.assignee = assignee
        self.timeout = timeout
        if timeout is not None:
            parse_duration(timeout, what="escalate timeout")

    async def handle(self, step: Step[Any, Any], args: Sequence[Any], kwargs: dict[str, Any],
                     error: TetherError) -> Any:
        """Called by the engine when `step` failed for good inside a workflow."""
        async def retry() -> Any:
            return await _runtime.current().execute_step(step, args, kwargs, attempts=1)

        return await self.run(error, step=step.name, inputs=_step_inputs(step, args, kwargs),
                              result_type=step.return_type, retry=retry)

    async def run(self, error: BaseException, *, step: str | None, inputs: Any, result_type: Any,
                  retry: Callable[[], Awaitable[Any]] | None) -> Any:
        """Ask a person what to do about `error` until they supply a result or give up."""
        schema = escalation_schema(result_type, can_retry=retry is not None)
        round_ = 1
        while True:
            answer = await _ask(self._question(step, error), kind="escalation", schema=schema,
                                timeout=self.timeout, assignee=self.assignee,
                                context=_escalation_context(error, step, inputs, round_),
                                on_timeout=NO_DEFAULT, step=step)
            if isinstance(answer, UseValue):
                return answer.value
            if isinstance(answer, FailRun):
                raise _failed_by_person(error, step, answer.reason)
            assert retry is not None
            try:
                return await retry()
            except TetherError as again:
                error, round_ = again, round_ + 1

    def _question(self, step: str | None, error: BaseException) -> str:
        if self.question:
            return self.question
        what = f"step {step!r}" if step else "an operation"
        failure = _short(error) if isinstance(error, StepFailed) else f"{what} failed: {_short(error)}"
        return f"{failure} — retry it, supply its result, or fail the run?"


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _escalation_context(error: BaseException, step: str | None, inputs: Any, round_: int) -> dict[str, Any]:
    return {"step": step, "error": str(error), "error_type": getattr(error, "error_type", "")
            or type(error).__name__, "inputs": inputs, "escalation": round_}


def _failed_by_person(error: BaseException, step: str | None, reason: str) -> StepFailed:
    name = step or "operation"
    return StepFailed(f"step {name!r} failed and a person chose to stop the run: {reason}",
                      step=name, error_type=getattr(error, "error_type", "") or type(error).__name__,
                      reason="failed by a person")


def _step_inputs(step: Step[Any, Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    try:
        bound = step.signature.bind(*args, **kwargs)
    except TypeError:
        return list(args)
    bound.apply_defaults()
    return dict(bound.arguments)


@overload
def escalate(error: None = None, /, *, question: str | None = None, assignee: str | None = None,
             timeout: Duration | None = None) -> Escalation: ...


@overload
def escalate(error: BaseException, /, *, question: str | None = None, assignee: str | None = None,
             timeout: Duration | None = None, result_type: type[T], inputs: Any = None,
             retry: Callable[[], Awaitable[Any]] | None = None,
             step: str | None = None) -> Awaitable[T]: ...


@overload
def escalate(error: BaseException, /, *, question: str | None = None, assignee: str | None = None,
             timeout: Duration | None = None, result_type: None = None, inputs: Any = None,
             retry: Callable[[], Awaitable[Any]] | None = None,
             step: str | None = None) -> Awaitable[Any]: ...


def escalate(error: BaseException | None = None, /, *, question: str | None = None,
             assignee: str | None = None, timeout: Duration | None = None,
             result_type: Any = None, inputs: Any = None,
             retry: Callable[[], Awaitable[Any]] | None = None,
             step: str | None = None) -> Escalation | Awaitable[Any]:
    """Hand a failure to a person instead of failing the run.

    Two forms. As a step option, `@tether.step(on_failure=tether.escalate(...))`: when the
    step exhausts its retries (or fails for good, e.g. `ModelOutputInvalid`), a human task
    opens with the error and the step's inputs; the person chooses to retry the step once
    more, to supply its result by hand (validated against the step's return type), or to
    fail the run with a reason. A retry that fails again opens a new task.

    As a plain function inside a workflow's `try/except`, pass the error and await it:

        >>> try:
        ...     category = await classify(doc)
        ... except tether.StepFailed as exc:
        ...     category = await tether.escalate(exc, result_type=Category, inputs={"doc": doc},
        ...                                      retry=lambda: classify(doc))

    Args:
        error: The failure to escalate (plain-function form only).
        question: What to ask (default: names the step and the error).
        assignee: Who should answer.
        timeout: How long to wait; when it passes, `HumanTaskExpired` is raised.
        result_type: Type a supplied result must have (plain form; the step's return type
            is used in the option form).
        inputs: What the failed operation was given, shown to the person (plain form).
        retry: Zero-argument callable that tries again (plain form; without it, the person
            can only supply a result or fail the run).
        step: Name of the failed operation, shown to the person (plain form).
    """
    policy = Escalation(question=question, assignee=assignee, timeout=timeout)
    if error is None:
        return policy
    if not isinstance(error, BaseException):
        raise UsageError(f"escalate() takes the exception to escalate, got {error!r}")
    if retry is not None and not callable(retry):
        raise UsageError("escalate(retry=...) takes a function that tries again, e.g. lambda: my_step(x)")
    return policy.run(error, step=step or getattr(error, "step", None), inputs=_json(inputs),
                      result_type=result_type, retry=_awaiting(retry) if retry else None)


def _awaiting(fn: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        result = fn()
        return await result if inspect.isawaitable(result) else result

    return call


__all__ = ["Escalation", "escalate", "escalation_schema"]
