"""People in the loop: `ask_human` and `confirm` (escalation is in `tether.escalation`).

Both run inside workflow code: the run pauses durably (nothing polls; a Temporal update
delivers the answer) until someone answers through `tether tasks`, the HTTP API or
Studio. The task records they leave are in `tether.human_tasks`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import TypeAdapter, ValidationError

from tether import _runtime
from tether.durations import Duration, parse_duration
from tether.errors import HumanTaskExpired, UsageError
from tether.human_tasks import AnswerRequest, HumanTask, TaskKind

if TYPE_CHECKING:
    pass

T = TypeVar("T")

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


__all__ = ["AnswerRequest", "HumanTask", "TaskKind", "ask_human", "confirm", "validate_answer"]
