"""People in the loop: `ask_human`, `confirm`, `escalate`, and the task records they leave.

The three functions run inside workflow code: the run pauses durably (nothing polls; a
Temporal update delivers the answer) until someone answers through `tether tasks`, the
HTTP API or Studio. `HumanTask` records are what those surfaces read.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar, overload

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from tether import _runtime
from tether.durations import Duration, parse_duration
from tether.errors import HumanTaskExpired, StepFailed, TetherError, UsageError

if TYPE_CHECKING:
    from tether.step import Step

T = TypeVar("T")

MAX_ANSWER_BYTES = 64 * 1024
"""Largest answer accepted, as JSON text (the HTTP API, the CLI and the workflow check it)."""

TaskKind = Literal["question", "confirm", "escalation"]
TaskStatus = Literal["open", "answered", "expired", "cancelled"]


class HumanTask(BaseModel):
    """One question put to a person by a run, open or closed.

    The timestamps make the records enough for metrics: time to answer is
    `answered_at - opened_at`; an expired task has `closed_at` and no `answered_at`.

    Attributes:
        id: `<run id>.<n>`, n counting the run's tasks from 1.
        run_id: The run that asked.
        workflow: The run's workflow name.
        kind: "question" (ask_human), "confirm" (yes/no) or "escalation" (a failed step).
        question: What the person is asked.
        answer_schema: JSON schema the answer must match.
        context: Data shown with the question (JSON).
        assignee: Who should answer (free text: a person, a team), if anyone in particular.
        status: "open", "answered", "expired" or "cancelled".
        opened_at / expires_at / answered_at / closed_at: Workflow times (UTC).
        answered_by: Who answered, as authenticated by the surface the answer came through:
            `os:USER` (the CLI), `token:NAME` (the HTTP API), `studio:NAME` (a Studio login),
            `local:USER` (loopback without a token), `mcp:CLIENT` (an MCP client).
        claimed_by: The name the answerer gave for themselves (`--as`, a form field, a body
            field); self-declared, so never a proof of who answered.
        answer: The validated answer, as JSON.
        default_on_timeout: Whether the run continues with a default when the task expires.
        step: For escalations, the step that failed.
    """

    id: str
    run_id: str
    workflow: str
    kind: TaskKind = "question"
    question: str
    answer_schema: dict[str, Any]
    context: Any = None
    assignee: str | None = None
    status: TaskStatus = "open"
    opened_at: datetime
    expires_at: datetime | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None
    claimed_by: str | None = None
    answer: Any = None
    closed_at: datetime | None = None
    default_on_timeout: bool = False
    step: str | None = None

    @property
    def answerer(self) -> str:
        """Who answered, for people: `os:alice`, or `token:ops on behalf of cfo` with a claimed name."""
        who = self.answered_by or "unknown"
        return f"{who} on behalf of {self.claimed_by}" if self.claimed_by else who


class AnswerRequest(BaseModel):
    """What the CLI and the HTTP API send to a run to answer one of its tasks.

    Attributes:
        task_id: The task answered.
        answer: The answer, as JSON.
        answered_by: The answerer's authenticated identity (see `HumanTask.answered_by`).
        claimed_by: A name the answerer gave for themselves, if any.
    """

    task_id: str
    answer: Any
    answered_by: str = "unknown"
    claimed_by: str | None = None


def split_task_id(task_id: str) -> tuple[str, int]:
    """`("<run id>", n)` for a task id `<run id>.<n>`.

    Raises:
        UsageError: The id does not have that shape.
    """
    run_id, dot, seq = task_id.rpartition(".")
    if not dot or not run_id or not seq.isdigit():
        raise UsageError(f"{task_id!r} is not a task id; task ids look like RUN_ID.N "
                         "(`tether tasks` lists them)")
    return run_id, int(seq)


class _NoDefault:
    def __repr__(self) -> str:
        return "<no default>"


NO_DEFAULT: Any = _NoDefault()


# ---- asking -----------------------------------------------------------------------------


@overload
async def ask_human(question: str, *, schema: type[T], timeout: Duration | None = None,
                    assignee: str | None = None, context: Any = None,
                    on_timeout: T = ...) -> T: ...


@overload
async def ask_human(question: str, *, schema: Any = str, timeout: Duration | None = None,
                    assignee: str | None = None, context: Any = None,
                    on_timeout: Any = ...) -> Any: ...


async def ask_human(question: str, *, schema: Any = str, timeout: Duration | None = None,
                    assignee: str | None = None, context: Any = None,
                    on_timeout: Any = NO_DEFAULT) -> Any:
    """Ask a person and wait, durably, for a valid answer.

    The run pauses (for days if need be; workers may restart meanwhile) until someone
    answers through `tether tasks answer`, the HTTP API or Studio. Answers are validated
    against `schema` before they reach the run; an invalid one is refused with the field
    named and the task stays open. Several tasks may be open at once (use `tether.gather`).

    Args:
        question: What to ask, in the person's language.
        schema: Type of the answer: a pydantic model, dataclass or plain type (default str).
        timeout: How long to wait ("2d", "30m", a timedelta); None waits forever.
        assignee: Who should answer (shown and filterable in `tether tasks`).
        context: Data the person needs to decide (a dict or a pydantic model; JSON).
        on_timeout: Value returned if the timeout passes; without it, a timeout raises.

    Returns:
        The answer, an instance of `schema`.

    Raises:
        HumanTaskExpired: The timeout passed and no `on_timeout` was given.
        UsageError: Called outside a workflow, or with a schema pydantic cannot use.

    Example:
        >>> class Approval(BaseModel):
        ...     approved: bool
        ...     comment: str = ""
        >>> ok = await tether.ask_human("Pay invoice 42 (12 400 EUR)?", schema=Approval,
        ...                             timeout="2d", assignee="finance")
    """
    return await _ask(question, kind="question", schema=schema, timeout=timeout,
                      assignee=assignee, context=context, on_timeout=on_timeout)


async def confirm(question: str, *, timeout: Duration | None = None, assignee: str | None = None,
                  context: Any = None, on_timeout: bool | None = None) -> bool:
    """Ask a yes/no question (see `ask_human`); returns True for yes.

    Example:
        >>> if await tether.confirm("Send the refund?", timeout="1d", on_timeout=False):
        ...     await refund(order)
    """
    default = NO_DEFAULT if on_timeout is None else on_timeout
    return bool(await _ask(question, kind="confirm", schema=bool, timeout=timeout,
                           assignee=assignee, context=context, on_timeout=default))


async def _ask(question: str, *, kind: TaskKind, schema: Any, timeout: Duration | None,
               assignee: str | None, context: Any, on_timeout: Any, step: str | None = None) -> Any:
    board = _runtime.current().tasks({"confirm": "confirm", "escalation": "escalate"}.get(kind, "ask_human"))
    if not isinstance(question, str) or not question.strip():
        raise UsageError("ask_human needs a question: a non-empty string")
    adapter = _adapter(schema)
    seconds = parse_duration(timeout, what="timeout").total_seconds() if timeout is not None else None
    if seconds is not None and seconds <= 0:
        raise UsageError("timeout must be positive, e.g. timeout='2d'")
    task = board.open(question=question, kind=kind, adapter=adapter, assignee=assignee,
                           context=_json(context), seconds=seconds, step=step,
                           default_on_timeout=on_timeout is not NO_DEFAULT)
    try:
        answered = await board.wait(task, seconds)
    except asyncio.CancelledError:
        board.close(task, "cancelled")
        raise
    if answered:
        return task.value
    board.close(task, "expired")
    if on_timeout is not NO_DEFAULT:
        return on_timeout
    raise HumanTaskExpired(f"nobody answered human task {task.record.id} ({question!r}) within "
                           f"{timeout}", task_id=task.record.id, question=question)


def _adapter(schema: Any) -> TypeAdapter[Any]:
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(schema)
        adapter.json_schema()
    except Exception as exc:
        raise UsageError(f"ask_human schema {schema!r} cannot be used: {exc}; use a pydantic "
                         "model, a dataclass or a plain type") from None
    return adapter


def _json(value: Any) -> Any:
    if value is None:
        return None
    try:
        return TypeAdapter(Any).dump_python(value, mode="json")
    except Exception as exc:
        raise UsageError(f"ask_human context must be JSON-like (a dict or a pydantic model): {exc}") from None


def validate_answer(adapter: TypeAdapter[Any], answer: Any) -> tuple[Any, str, str]:
    """Validate a raw JSON answer; returns (value, "", "") or (None, field, message)."""
    try:
        return adapter.validate_python(answer), "", ""
    except ValidationError as exc:
        err = exc.errors()[0]
        field = _field(err)
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        where = f"field {field!r}: " if field else ""
        return None, field, f"{where}{err['msg']}{more}"


def _field(err: Any) -> str:
    loc = [str(p) for p in err.get("loc", ())]
    if err.get("type", "").startswith("union_tag"):
        tag = str(err.get("ctx", {}).get("discriminator", "")).strip("'")
        return ".".join([*loc, tag]) if tag else ".".join(loc)
    if loc and loc[0] in ("retry", "use", "fail"):  # the tag of an escalation answer
        loc = loc[1:]
    return ".".join(loc)


# ---- escalation ---------------------------------------------------------------------------


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
    use: Any = UseValue[result_type if result_type is not None else Any]  # type: ignore[misc,valid-type]
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
             timeout: Duration | None = None, result_type: Any = None, inputs: Any = None,
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


__all__ = ["AnswerRequest", "Escalation", "HumanTask", "ask_human", "confirm", "escalate"]
