"""The human tasks of a run, inside Temporal workflow code: the per-run task board, the
`tether.answer` update (with its validator) and the `tether.tasks` query.

Runs in the workflow sandbox. Every change is published to the run's memo (the task
records) and to the `TetherOpenTasks` search attribute (open task ids), so clients can
list and read tasks without a worker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import TypeAdapter
from temporalio import workflow
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

from tether import _events
from tether.errors import UsageError
from tether.human import validate_answer
from tether.human_tasks import MAX_ANSWER_BYTES, AnswerRequest, HumanTask, TaskKind

UPDATE = "tether.answer"
QUERY = "tether.tasks"
MEMO = "tether.tasks"
HUMAN_TIMER = "human task "
"""Summary prefix of the timer bounding a task's wait (history shows the task instead)."""
OPEN_TASKS = SearchAttributeKey.for_keyword_list("TetherOpenTasks")


@dataclass
class OpenTask:
    """A task as the workflow holds it: its record, the answer's type and the typed answer."""

    record: HumanTask
    adapter: TypeAdapter[Any]
    value: Any = None


@dataclass
class TaskBoard:
    """All human tasks of one run, in the order they were opened."""

    tasks: dict[str, OpenTask] = field(default_factory=dict)

    def check(self, request: AnswerRequest) -> OpenTask:
        """The open task `request` answers, or an ApplicationError the client maps to a TetherError."""
        task = self.tasks.get(request.task_id)
        if task is None:
            raise ApplicationError(f"run {workflow.info().workflow_id} has no task {request.task_id!r}",
                                   type="TaskNotFound", non_retryable=True)
        rec = task.record
        if rec.status != "open":
            raise ApplicationError(closed_message(rec), {"status": rec.status},
                                   type="TaskClosed", non_retryable=True)
        size = len(json.dumps(request.answer, default=str))
        if size > MAX_ANSWER_BYTES:
            raise ApplicationError(f"field 'answer': the answer is {size} bytes; the limit is "
                                   f"{MAX_ANSWER_BYTES}", {"field": "answer"},
                                   type="InvalidAnswer", non_retryable=True)
        _, where, message = validate_answer(task.adapter, request.answer)
        if message:
            raise ApplicationError(f"invalid answer for task {rec.id}: {message}", {"field": where},
                                   type="InvalidAnswer", non_retryable=True)
        return task

    def answer(self, request: AnswerRequest) -> HumanTask:
        """Record a valid answer (validated again: two answers may pass validation together)."""
        task = self.check(request)
        task.value, _, _ = validate_answer(task.adapter, request.answer)
        now = workflow.now()
        task.record = task.record.model_copy(update={
            "status": "answered", "answered_at": now, "closed_at": now,
            "answered_by": request.answered_by or "unknown", "claimed_by": request.claimed_by or None,
            "answer": task.adapter.dump_python(task.value, mode="json"),
        })
        self.publish()
        return task.record

    def records(self) -> list[HumanTask]:
        return [t.record for t in self.tasks.values()]

    def publish(self) -> None:
        """Mirror the records to the memo and the open ids to the search attribute."""
        records = [r.model_dump(mode="json") for r in self.records()]
        workflow.upsert_memo({MEMO: records})
        open_ids = [r.id for r in self.records() if r.status == "open"]
        update = OPEN_TASKS.value_set(open_ids) if open_ids else OPEN_TASKS.value_unset()
        workflow.upsert_search_attributes([update])
        _events.publish(_events.HUMAN_TASKS, self.records())  # observability makes spans and metrics of them


def closed_message(rec: HumanTask) -> str:
    """Why a closed task cannot be answered, for people."""
    if rec.status == "answered":
        return (f"task {rec.id} was already answered by {rec.answerer} at "
                f"{rec.answered_at:%Y-%m-%d %H:%M:%S} UTC; its answer stands")
    if rec.status == "expired":
        return f"task {rec.id} expired at {rec.closed_at:%Y-%m-%d %H:%M:%S} UTC; nobody can answer it now"
    return f"task {rec.id} is {rec.status}; nobody can answer it now"


class TaskHandlers:
    """Mixed into every generated tether workflow class: answering and reading its tasks."""

    @workflow.update(name=UPDATE)
    def tether_answer(self, request: AnswerRequest) -> HumanTask:
        return _board(self).answer(request)

    @tether_answer.validator
    def tether_check_answer(self, request: AnswerRequest) -> None:
        _board(self).check(request)

    @workflow.query(name=QUERY)
    def tether_tasks(self) -> list[HumanTask]:
        return _board(self).records()


def _board(instance: Any) -> TaskBoard:
    board: TaskBoard | None = getattr(instance, "_tether_board", None)
    if board is None:
        board = TaskBoard()
        instance._tether_board = board
    return board


def current_board() -> TaskBoard:
    """The task board of the running workflow."""
    instance = workflow.instance()
    if not isinstance(instance, TaskHandlers):
        raise UsageError("human tasks need a tether workflow (@tether.workflow); this is a plain "
                         "Temporal workflow")
    return _board(instance)


def open_task(*, question: str, kind: TaskKind, adapter: TypeAdapter[Any], assignee: str | None,
              context: Any, seconds: float | None, step: str | None,
              default_on_timeout: bool) -> OpenTask:
    """Open a task on the current run's board and publish it."""
    board = current_board()
    info = workflow.info()
    now = workflow.now()
    record = HumanTask(
        id=f"{info.workflow_id}.{len(board.tasks) + 1}", run_id=info.workflow_id,
        workflow=info.workflow_type, kind=kind, question=question,
        answer_schema=adapter.json_schema(), context=context, assignee=assignee, opened_at=now,
        expires_at=now + timedelta(seconds=seconds) if seconds is not None else None,
        default_on_timeout=default_on_timeout, step=step,
    )
    task = OpenTask(record=record, adapter=adapter)
    board.tasks[record.id] = task
    board.publish()
    return task


async def wait(task: OpenTask, seconds: float | None) -> bool:
    """Wait for the task's answer; False when `seconds` pass first."""
    try:
        await workflow.wait_condition(lambda: task.record.status != "open", timeout=seconds,
                                      timeout_summary=f"{HUMAN_TIMER}{task.record.id}")
    except TimeoutError:
        return task.record.status == "answered"
    return task.record.status == "answered"


def close(task: OpenTask, status: str) -> None:
    """Close a task that was not answered (expired, cancelled) and publish it."""
    if task.record.status != "open":
        return
    now = workflow.now()
    task.record = task.record.model_copy(update={"status": status, "closed_at": now})
    current_board().publish()


class Board:
    """The running workflow's task board, as the runtime offers it to `tether.human`."""

    def open(self, *, question: str, kind: TaskKind, adapter: TypeAdapter[Any], assignee: str | None,
             context: Any, seconds: float | None, step: str | None, default_on_timeout: bool) -> OpenTask:
        return open_task(question=question, kind=kind, adapter=adapter, assignee=assignee, context=context,
                         seconds=seconds, step=step, default_on_timeout=default_on_timeout)

    async def wait(self, task: OpenTask, seconds: float | None) -> bool:
        return await wait(task, seconds)

    def close(self, task: OpenTask, status: str) -> None:
        close(task, status)
