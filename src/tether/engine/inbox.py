"""The human-task inbox, client side: list open tasks across runs, read one, answer one.

Used by the CLI, the HTTP API and Studio (as `client.tasks`). Listing and reading need no
worker (they read runs' memos); answering sends the `tether.answer` update, which a
worker validates against the task's schema before the run sees it.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import WorkflowExecution, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from tether.engine.devserver import SEARCH_ATTRIBUTES
from tether.engine.stuck import stuck_reason
from tether.engine.tasks import MEMO, UPDATE, closed_message
from tether.errors import (
    ConfigError,
    DecryptionFailed,
    InvalidAnswer,
    NoWorker,
    RunStuck,
    TaskClosed,
    TaskNotFound,
    TetherError,
)
from tether.human_tasks import MAX_ANSWER_BYTES, AnswerRequest, HumanTask, split_task_id

if TYPE_CHECKING:
    from tether.engine.client import Client

_KINDS = {"KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST}


class TaskList(list[HumanTask]):
    """Open tasks, plus the ids of runs whose tasks could not be read here (`unreadable`)."""

    def __init__(self, tasks: list[HumanTask], *, unreadable: list[str]) -> None:
        super().__init__(tasks)
        self.unreadable = unreadable


class TaskInbox:
    """Open human tasks across runs, and answering them.

    Example:
        >>> for task in await client.tasks.list(assignee="finance"):
        ...     print(task.id, task.question)
        >>> await client.tasks.answer(task.id, {"approved": True}, by="os:alice")
    """

    def __init__(self, client: Client) -> None:
        self._client = client

    async def list(self, *, assignee: str | None = None, run_id: str | None = None,
                   task_queue: str | None = None, limit: int = 200) -> TaskList:
        """Open tasks, oldest first (from the runs' memos: no worker needed).

        Runs whose tasks this process cannot decrypt (their payload key is not here) are
        left out and named in the result's `unreadable`.

        Args:
            assignee: Only tasks assigned to this person or team.
            run_id: Only tasks of this run.
            task_queue: Only runs on this task queue.
            limit: At most this many runs are read.
        """
        clauses = ["TetherOpenTasks IS NOT NULL", "ExecutionStatus = 'Running'"]
        if run_id:
            clauses.append(f"WorkflowId = '{_quote(run_id)}'")
        if task_queue:
            clauses.append(f"TaskQueue = '{_quote(task_queue)}'")
        found: list[HumanTask] = []
        unreadable: list[str] = []
        async for ex in self._client.temporal.list_workflows(" AND ".join(clauses), limit=limit):
            try:
                found += [t for t in await _records(ex) if t.status == "open"]
            except DecryptionFailed:  # one run under a foreign key must not hide everyone's tasks
                unreadable.append(ex.id)
        if assignee:
            found = [t for t in found if t.assignee == assignee]
        return TaskList(sorted(found, key=lambda t: t.opened_at), unreadable=unreadable)

    async def wait(self, run_id: str, *, timeout: float = 30.0) -> HumanTask:
        """Wait until the run `run_id` has an open task and return it (the oldest one).

        Handy in tests: start a run, `task = await client.tasks.wait(run.id)`, answer it.

        Raises:
            TimeoutError: No task opened within `timeout` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = await self.list(run_id=run_id)
            if found:
                return found[0]
            if loop.time() >= deadline:
                raise TimeoutError(f"run {run_id} opened no human task within {timeout:g}s")
            await asyncio.sleep(0.1)

    async def get(self, task_id: str) -> HumanTask:
        """One task, open or closed, with its question, schema and context.

        Raises:
            TaskNotFound: No such run, or the run has no such task.
        """
        run_id, _ = split_task_id(task_id)
        try:
            desc = await self._client.temporal.get_workflow_handle(run_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise TaskNotFound(task_id, f"no run {run_id!r}") from None
            raise
        for task in await _records(desc):
            if task.id == task_id:
                return task
        raise TaskNotFound(task_id, f"run {run_id} has not opened it")

    async def answer(self, task_id: str, answer: Any, *, by: str, claimed_by: str | None = None,
                     timeout: float = 60.0) -> HumanTask:
        """Answer an open task; returns the closed record (who answered, when, what).

        The run validates the answer against the task's schema first; an invalid one is
        refused and the task stays open.

        Args:
            task_id: The task, `RUN_ID.N`.
            answer: The answer, as JSON-like data.
            by: Who answers, as the caller authenticated them (recorded as `answered_by`).
            claimed_by: A name the answerer gave for themselves (recorded apart, as `claimed_by`).
            timeout: Seconds to wait for a worker to take the answer.

        Raises:
            InvalidAnswer: The answer does not match the schema (names the field) or is too large.
            TaskClosed: The task was already answered, expired, or its run ended.
            TaskNotFound: No such task.
            RunStuck: The run cannot move (its code fails, or no worker takes it); nothing was sent.
            NoWorker: No worker took the answer within `timeout` seconds.
        """
        check_size(task_id, answer)
        task = await self.get(task_id)
        if task.status != "open":
            raise TaskClosed(closed_message(task), task_id=task_id, status=task.status)
        await self._refuse_if_stuck(task_id, task.run_id)  # say why now, not after `timeout`
        handle = self._client.temporal.get_workflow_handle(task.run_id)
        request = AnswerRequest(task_id=task_id, answer=answer, answered_by=by, claimed_by=claimed_by or None)
        try:
            return await asyncio.wait_for(
                handle.execute_update(UPDATE, request, result_type=HumanTask), timeout)
        except WorkflowUpdateFailedError as exc:
            raise _update_error(task_id, exc) from None
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                await self._refuse_if_stuck(task_id, task.run_id)  # e.g. "Workflow Task in failed state"
            raise _rpc_error(task_id, exc) from None
        except TimeoutError:
            await self._refuse_if_stuck(task_id, task.run_id)
            raise NoWorker(f"no worker took the answer to {task_id} within {timeout:g}s; start one "
                           "(`tether dev` or `tether worker`); the answer may still be applied "
                           f"when it starts: check with `tether tasks show {task_id}`") from None

    async def _refuse_if_stuck(self, task_id: str, run_id: str) -> None:
        why = await stuck_reason(self._client.temporal, run_id)
        if why is not None:
            raise RunStuck(f"task {task_id} cannot be answered now: run {run_id} is stuck: {why}",
                           run_id=run_id, reason=why)


def check_size(task_id: str, answer: Any) -> None:
    """Refuse answers larger than `MAX_ANSWER_BYTES` as JSON."""
    size = len(json.dumps(answer, default=str))
    if size > MAX_ANSWER_BYTES:
        raise InvalidAnswer(f"field 'answer': the answer is {size} bytes; the limit is "
                            f"{MAX_ANSWER_BYTES}", task_id=task_id, field="answer")


async def _records(ex: WorkflowExecution) -> list[HumanTask]:
    try:
        raw = await ex.memo_value(MEMO, [])
    except DecryptionFailed:
        raise
    except Exception as exc:  # e.g. an encrypted memo read by a process with no codec at all
        raise DecryptionFailed(f"cannot read the human tasks of run {ex.id}: {exc}; this process "
                               "needs the payload key (TETHER_KEY_FILE or TETHER_KEYS)", key_id="") from None
    return [HumanTask.model_validate(r) for r in raw]


def _update_error(task_id: str, exc: WorkflowUpdateFailedError) -> TetherError:
    cause = exc.cause
    if not isinstance(cause, ApplicationError):
        return TaskClosed(f"answer to {task_id} refused: {cause}", task_id=task_id)
    details = cause.details[0] if cause.details else {}
    if cause.type == "InvalidAnswer":
        return InvalidAnswer(cause.message, task_id=task_id, field=details.get("field", ""))
    if cause.type == "TaskNotFound":
        return TaskNotFound(task_id)
    return TaskClosed(cause.message, task_id=task_id, status=details.get("status", ""))


def _rpc_error(task_id: str, exc: RPCError) -> Exception:
    if exc.status == RPCStatusCode.NOT_FOUND or "already completed" in str(exc):
        return TaskClosed(f"task {task_id} cannot be answered: its run has ended",
                          task_id=task_id, status="closed")
    return exc


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


async def ensure_search_attributes(client: Client) -> None:
    """Register tether's search attributes in the namespace if they are missing.

    Raises:
        ConfigError: They are missing and this client may not add them.
    """
    ns = client.connection.namespace
    svc = client.temporal.operator_service
    have = await svc.list_search_attributes(ListSearchAttributesRequest(namespace=ns))
    missing = {k: v for k, v in SEARCH_ATTRIBUTES.items() if k not in have.custom_attributes}
    if not missing:
        return
    try:
        await svc.add_search_attributes(AddSearchAttributesRequest(
            namespace=ns, search_attributes={k: _KINDS[v] for k, v in missing.items()}))
    except RPCError as exc:
        if exc.status == RPCStatusCode.ALREADY_EXISTS:
            return
        names = ", ".join(f"{k} ({v})" for k, v in missing.items())
        raise ConfigError(
            f"namespace {ns!r} lacks the search attribute {names} that human tasks need, and "
            f"this worker may not add it ({exc.message}); add it once with `temporal operator "
            f"search-attribute create --namespace {ns} --name TetherOpenTasks --type KeywordList`"
        ) from None
