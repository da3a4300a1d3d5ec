"""The Python client: start runs, await results, cancel, list and inspect runs.

Used by applications (web backends, queue consumers), by the CLI and by Studio; it is
the only code path that talks to Temporal on their behalf.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, ListWorkflowExecutionsRequest
from temporalio.client import Client as TemporalClient
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistoryEventFilterType,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.converter import default as default_converter
from temporalio.exceptions import CancelledError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from tether import _registry, budget
from tether._runtime import MODELS_MEMO, base_queue, zone_queue
from tether.engine import live
from tether.engine.connection import Connection
from tether.engine.history import RunHistory, StepRecord, merge_pending, read_history
from tether.engine.live import RunEvent
from tether.engine.stuck import stuck_reason, why_stuck
from tether.engine.tasks import MEMO as TASKS_MEMO
from tether.errors import RunCancelled, RunExists, RunFailed, RunNotFound, UnknownWorkflow, UsageError
from tether.llm._substitute import check_overrides
from tether.workflow import Workflow

if TYPE_CHECKING:
    from tether.engine.deployments import Deployments
    from tether.engine.inbox import TaskInbox
    from tether.engine.schedules import Schedules

_STATUS = {
    WorkflowExecutionStatus.RUNNING: "running",
    WorkflowExecutionStatus.COMPLETED: "completed",
    WorkflowExecutionStatus.FAILED: "failed",
    WorkflowExecutionStatus.CANCELED: "cancelled",
    WorkflowExecutionStatus.TERMINATED: "terminated",
    WorkflowExecutionStatus.CONTINUED_AS_NEW: "continued",
    WorkflowExecutionStatus.TIMED_OUT: "timed out",
}

_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "cancelled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed out",
}
"""The status a run's last history event closes it with."""

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RunSummary:
    """A line of `tether runs`: one run and its state."""

    id: str
    workflow: str
    status: str
    started_at: datetime | None
    closed_at: datetime | None
    task_queue: str
    open_tasks: int = 0  # human tasks waiting for an answer
    stuck: str | None = None  # why a "stuck" run cannot move, and what to do


@dataclass
class RunDetail:
    """Everything known about one run: outcome, input and the steps with their attempts."""

    id: str
    workflow: str
    status: str
    started_at: datetime | None
    closed_at: datetime | None
    task_queue: str
    input: Any
    result: Any
    error: str | None
    error_type: str | None
    steps: list[StepRecord]
    workflow_task_error: str | None
    stuck: str | None = None  # why a running run cannot move, and what to do
    budget: dict[str, float] | None = None  # the run's budget limits (raised ones included), if any
    spent: dict[str, float] | None = None  # what it spent, children included (recorded when it ended)


class Run(Generic[R]):
    """A handle on one run, by workflow id; `R` is the workflow's result type."""

    def __init__(self, client: Client, handle: WorkflowHandle[Any, Any],
                 workflow: Workflow[Any, Any] | None = None) -> None:
        self._client = client
        self._handle = handle
        self.workflow = workflow

    @property
    def id(self) -> str:
        """The run's id (Temporal's workflow id)."""
        return self._handle.id

    async def result(self, *, timeout: float | None = None, outage: float = 120.0) -> R:
        """Wait for the run to finish and return its result.

        Waiting survives a server restart: an unreachable server is retried with backoff
        for up to `outage` seconds in a row.

        Args:
            timeout: Give up waiting after this many seconds (the run goes on).
            outage: How long an unreachable server is waited for.

        Raises:
            RunFailed: The workflow failed; carries its error message and type.
            RunCancelled: The run was cancelled.
            TimeoutError: The run had not finished within `timeout` seconds.
        """
        if timeout is None:
            return await self._result(outage)
        try:
            return await asyncio.wait_for(self._result(outage), timeout)
        except TimeoutError:
            raise TimeoutError(f"run {self.id} did not finish within {timeout:g}s; it goes on "
                               f"(`tether show {self.id}`)") from None

    async def _result(self, outage: float) -> R:
        delay, waited = 0.2, 0.0
        while True:
            try:
                result: R = await self._handle.result()
                return result
            except WorkflowFailureError as exc:
                cause = exc.cause
                if isinstance(cause, CancelledError):
                    raise RunCancelled(self.id) from None
                message = getattr(cause, "message", None) or str(cause)
                raise RunFailed(self.id, message, error_type=getattr(cause, "type", "") or "") from None
            except RPCError as exc:
                if exc.status not in _TRANSIENT or waited >= outage:
                    raise _not_found(self.id, exc) from None
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 5.0)

    async def cancel(self) -> None:
        """Ask the run to stop; steps in flight are cancelled, the run ends as cancelled."""
        try:
            await self._handle.cancel()
        except RPCError as exc:
            raise _not_found(self.id, exc) from None

    async def describe(self) -> RunDetail:
        """The run's status, input, outcome and steps (with live attempt counts)."""
        try:
            desc = await self._handle.describe()
            events = [e async for e in self._handle.fetch_history_events()]
        except RPCError as exc:
            raise _not_found(self.id, exc) from None
        hist: RunHistory = await read_history(events, self._client.temporal.data_converter)
        await merge_pending(hist.steps, desc.raw_description.pending_activities, self._client.temporal.data_converter)
        await self._note_missing_zone_workers(hist.steps, desc.task_queue)
        stuck = None
        if desc.status == WorkflowExecutionStatus.RUNNING:
            stuck = await why_stuck(self._client.temporal, self.id, desc.raw_description)
        memo = await desc.memo() if desc.raw_description.workflow_execution_info.memo.fields else {}
        return RunDetail(
            id=self.id, workflow=desc.workflow_type,
            status=_STATUS.get(desc.status, "unknown") if desc.status else "unknown",
            started_at=desc.start_time, closed_at=desc.close_time, task_queue=desc.task_queue,
            input=hist.input, result=hist.result, error=hist.error, error_type=hist.error_type,
            steps=hist.steps, workflow_task_error=hist.workflow_task_error, stuck=stuck,
            budget=_dict_or_none(memo.get(budget.MEMO_LIMITS)), spent=_dict_or_none(memo.get(budget.MEMO_USAGE)),
        )


    async def closed(self, *, wait: bool = False, until_task: bool = False) -> RunDetail:
        """A finished run as its history records it: none of `describe`'s live checks (pending
        attempts, stuck runs, missing workers), for reading many finished runs back.

        Args:
            wait: First wait for the run to close, as `result()` does (one long poll for the
                closing event only), then read its history once.
            until_task: With `wait`, stop waiting when the run opens a human task (its status
                is then "running"); checked after `TASK_CHECK_AFTER` seconds, then less often.

        Raises:
            RunNotFound: No run with this id exists.
        """
        try:
            if wait:
                await self.wait_closed(until_task=until_task)
            events = [e async for e in self._handle.fetch_history_events()]
        except RPCError as exc:
            raise _not_found(self.id, exc) from None
        hist: RunHistory = await read_history(events, self._client.temporal.data_converter)
        start = events[0].workflow_execution_started_event_attributes
        last = events[-1]
        return RunDetail(
            id=self.id, workflow=start.workflow_type.name, status=_CLOSED.get(last.event_type, "running"),
            started_at=events[0].event_time.ToDatetime(tzinfo=UTC),
            closed_at=last.event_time.ToDatetime(tzinfo=UTC) if last.event_type in _CLOSED else None,
            task_queue=start.task_queue.name, input=hist.input, result=hist.result, error=hist.error,
            error_type=hist.error_type, steps=hist.steps, workflow_task_error=hist.workflow_task_error,
        )

    async def wait_closed(self, *, until_task: bool = False) -> None:
        """Return when the run has closed (or, `until_task`, has opened a human task), without
        reading its outcome: one long poll for the closing event, as `result()` makes.

        Following every event of the history instead would wake the wait at each step.

        Raises:
            RunNotFound: No run with this id exists.
        """
        try:
            await self._until_closed(until_task)
        except RPCError as exc:
            raise _not_found(self.id, exc) from None

    async def _until_closed(self, until_task: bool) -> None:
        closing = self._handle.fetch_history_events(
            wait_new_event=True, event_filter_type=WorkflowHistoryEventFilterType.CLOSE_EVENT)
        waiting = asyncio.ensure_future(anext(aiter(closing)))
        try:
            every = TASK_CHECK_AFTER
            while True:
                done, _ = await asyncio.wait({waiting}, timeout=every if until_task else None)
                if done:
                    waiting.result()
                    return
                desc = await self._handle.describe()  # a task opened: its records are in the memo
                if TASKS_MEMO in desc.raw_description.workflow_execution_info.memo.fields:
                    return
                every = min(every * 2, 10.0)
        finally:
            waiting.cancel()


    async def events(self, *, after: str | None = None, poll: float = live.POLL_EVERY) -> AsyncIterator[RunEvent]:
        """The run's events as they happen: steps scheduled, started, retrying and finished, a
        model's tokens as it writes them, `tether.progress()` of running steps, notes, human
        tasks, and the run's end, after which the iterator stops.

        Resumable: pass the `offset` of the last event you handled as `after` (e.g. after a
        disconnect) and the events continue right after it, none missed, none repeated. Tokens
        of a model step join into its final text (a retried attempt's tokens start afresh, with
        its `attempt`). Events carry what the run's history would show: handles, never a
        sensitive value a step revealed.

        Args:
            after: Resume after the event with this offset (default: from the run's start).
            poll: Seconds between reads of the steps in flight (tokens and progress).

        Raises:
            RunNotFound: No run with this id exists.
            UsageError: `after` is not an event offset.

        Example:
            >>> async for ev in run.events():
            ...     if ev.kind == "tokens":
            ...         print(ev.text, end="", flush=True)
        """
        try:
            async for event in live.follow(self._client.temporal, self.id, after=after, poll=poll):
                yield event
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        except RPCError as exc:
            raise _not_found(self.id, exc) from None

    async def _note_missing_zone_workers(self, steps: list[StepRecord], queue: str) -> None:
        """Mark steps that wait for a worker, so they do not look like a hang: at once when no
        worker of their zone polled lately, and when a due attempt sat untaken for a few seconds
        (a worker that just died still looks present to the engine for up to a minute)."""
        now = datetime.now(UTC)
        waiting = [s for s in steps if s.kind == "step" and s.status in ("scheduled", "retrying")]
        for zone in sorted({s.zone or "" for s in waiting}):
            in_zone = [s for s in waiting if (s.zone or "") == zone]
            where = f"a worker in zone {zone}" if zone else "a worker"
            present = await _has_step_worker(self._client, zone_queue(base_queue(queue), zone or None))
            for s in in_zone:
                idle = (now - s.waiting_since).total_seconds() if s.waiting_since else 0.0
                if not present and zone:
                    s.status, s.waiting_for = "waiting", where
                elif idle >= UNTAKEN_AFTER:
                    s.status, s.waiting_for = "waiting", f"{where}: none has taken it for {idle:.0f}s"


TASK_CHECK_AFTER = 3.0
"""Seconds before `Run.closed(wait=True, until_task=True)` first checks whether the run waits for a person."""
UNTAKEN_AFTER = 3.0
"""Seconds a due step attempt may wait before `describe()` says no worker is taking it."""


async def _has_step_worker(client: Client, queue: str) -> bool:
    """True when a worker polled `queue` for steps in the last 90 s (long polls last up to ~60 s)."""
    resp = await client.temporal.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(namespace=client.connection.namespace, task_queue=TaskQueue(name=queue),
                                 task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY))
    recent = datetime.now(UTC).timestamp() - 90
    return any(p.last_access_time.ToSeconds() >= recent for p in resp.pollers)


STUCK_CHECKS = 100
"""Running runs a listing checks for being stuck (one engine call each), newest first."""

_TRANSIENT = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.UNKNOWN, RPCStatusCode.DEADLINE_EXCEEDED,
              RPCStatusCode.CANCELLED, RPCStatusCode.INTERNAL}
"""Statuses of a server that is restarting or unreachable for a moment (retried while waiting)."""


def _not_found(run_id: str, exc: RPCError) -> Exception:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return RunNotFound(run_id)
    return exc


class Client:
    """Start and inspect runs from your own code.

    Example:
        >>> client = await tether.Client.connect("127.0.0.1:7233")
        >>> run = await client.start(process_invoice, invoice)
        >>> result = await run.result()
    """

    def __init__(self, temporal: TemporalClient, connection: Connection) -> None:
        self.temporal = temporal
        self.connection = connection
        self.serves_builds = False
        """Whether a worker of a build (worker versioning) runs on this client: then runs start
        through the engine, which routes them to the current build, not eagerly on a local worker."""

    @classmethod
    async def connect(cls, address: str | None = None, *, namespace: str | None = None,
                      task_queue: str | None = None, tls_cert: str | None = None,
                      tls_key: str | None = None, tls_ca: str | None = None,
                      api_key: str | None = None) -> Client:
        """Connect to a Temporal server; unset settings come from `TETHER_*` variables.

        Raises:
            ServerUnavailable: Nothing answered at the address.
        """
        conn = Connection.from_env(address=address, namespace=namespace, task_queue=task_queue,
                                   tls_cert=tls_cert, tls_key=tls_key, tls_ca=tls_ca,
                                   api_key=api_key)
        return cls(await conn.connect(), conn)

    @overload
    async def start(self, workflow: Workflow[P, R], input: Any = None, *, id: str | None = None,
                    task_queue: str | None = None, allow_id_reuse: bool = False,
                    started_by: str | None = None,
                    models: Mapping[str, str] | None = None) -> Run[R]: ...

    @overload
    async def start(self, workflow: str, input: Any = None, *, id: str | None = None,
                    task_queue: str | None = None, allow_id_reuse: bool = False,
                    started_by: str | None = None,
                    models: Mapping[str, str] | None = None) -> Run[Any]: ...

    async def start(self, workflow: Workflow[Any, Any] | str, input: Any = None, *,
                    id: str | None = None, task_queue: str | None = None, allow_id_reuse: bool = False,
                    started_by: str | None = None, models: Mapping[str, str] | None = None) -> Run[Any]:
        """Start a run and return its handle without waiting.

        The input is validated against the workflow's input type first; an invalid input
        raises `InvalidInput` and starts nothing.

        Args:
            workflow: The workflow function, or its registered name.
            input: Its input: an instance of the input type, or JSON-like data for it.
            id: The run id (default: `<workflow>-<random>`). An id is used once: a run
                with that id, open or finished, refuses the start (so a retried request
                does not pay twice), unless `allow_id_reuse`.
            task_queue: Override the connection's task queue.
            allow_id_reuse: Start even when a finished run had this id.
            started_by: Who starts it (e.g. `mcp:claude`), kept in the run's memo
                (`tether.started_by`; encrypted like payloads).
            models: Model overrides for this run only, kept in its memo (`tether.models`) and
                applied where its model calls pick their model: `{"extract": "local:smollm2"}`
                gives the `extract` calls another model, `{"mistral:*": "openai:gpt-4.1"}` every
                call to a matching model (see `tether.llm` and `tether eval --models`).

        Raises:
            UsageError: `id` is empty.
            RunExists: A run with this id exists (open, or finished and `allow_id_reuse` is False).
        """
        wf = resolve_workflow(workflow)
        args = wf.validate_input(input)
        if id is not None and not id.strip():
            raise UsageError("a run id must not be empty; leave it out to get a generated one")
        run_id = id or new_run_id(wf.name)
        memo: dict[str, Any] = {STARTED_BY: started_by} if started_by else {}
        if models:
            memo[MODELS_MEMO] = check_overrides(models)
        if wf.budget is not None:  # shown by `tether show` from the start, at no cost to the run
            memo[budget.MEMO_LIMITS] = wf.budget.limits()
        policy = WorkflowIDReusePolicy.ALLOW_DUPLICATE if allow_id_reuse else WorkflowIDReusePolicy.REJECT_DUPLICATE
        try:
            handle = await self.temporal.start_workflow(
                wf.name, args=args, id=run_id, task_queue=task_queue or self.connection.task_queue,
                result_type=wf.return_type, id_reuse_policy=policy,
                memo=memo or None,
                # a worker sharing this client takes the run's first task in the start's reply, unless
                # workers of builds share it: that worker could be of another build than the current one
                request_eager_start=not self.serves_builds,
            )
        except WorkflowAlreadyStartedError:
            raise RunExists(await self._id_taken(run_id), run_id=run_id) from None
        return Run(self, handle, wf)

    async def _id_taken(self, run_id: str) -> str:
        try:
            status = (await self.get(run_id).describe()).status
        except Exception:  # the id is taken; its status is only a detail of the message
            status = "existing"
        if status == "running":
            return (f"run {run_id} is already running; follow it with `tether show {run_id}` or choose "
                    "another id")
        return (f"a run with id {run_id} already exists ({status}); run ids are used once so a repeated "
                "start cannot do the work twice: choose another id, or allow it explicitly "
                "(`tether run --allow-id-reuse`, Client.start(allow_id_reuse=True))")

    @overload
    async def run(self, workflow: Workflow[P, R], input: Any = None, **kw: Any) -> R: ...

    @overload
    async def run(self, workflow: str, input: Any = None, **kw: Any) -> Any: ...

    async def run(self, workflow: Workflow[Any, Any] | str, input: Any = None, **kw: Any) -> Any:
        """Start a run and wait for its result (see `start` and `Run.result`)."""
        return await (await self.start(workflow, input, **kw)).result()

    def get(self, run_id: str) -> Run[Any]:
        """A handle on an existing run."""
        return Run(self, self.temporal.get_workflow_handle(run_id))

    @property
    def tasks(self) -> TaskInbox:
        """The human-task inbox: list, read and answer tasks opened by `ask_human`."""
        from tether.engine.inbox import TaskInbox

        return TaskInbox(self)

    @property
    def schedules(self) -> Schedules:
        """Schedules that start runs on a cron or an interval: create, list, pause, trigger, delete."""
        from tether.engine.schedules import Schedules

        return Schedules(self)

    @property
    def deployments(self) -> Deployments:
        """Versioned worker deployments: make a build current, see which builds still hold runs."""
        from tether.engine.deployments import Deployments

        return Deployments(self)

    async def list_runs(self, *, workflow: str | None = None, status: str | None = None,
                        task_queue: str | None = None, limit: int = 20,
                        id_prefix: str | None = None, check_stuck: bool = True) -> list[RunSummary]:
        """The most recent runs, newest first, optionally filtered by workflow, status, queue, id prefix.

        `check_stuck=False` skips looking at each running run for what keeps it from moving (faster).
        """
        query = list_query(workflow=workflow, status=status, task_queue=task_queue, id_prefix=id_prefix)
        out = await self._list_summaries(query, limit)
        out.sort(key=lambda r: r.started_at or _EPOCH, reverse=True)
        if check_stuck or status == "stuck":
            out = await self._mark_stuck(out)
        return [r for r in out if r.status == "stuck"] if status == "stuck" else out

    async def _list_summaries(self, query: str | None, limit: int) -> list[RunSummary]:
        """Up to `limit` runs matching the visibility `query`, in the server's order (running, then last closed).

        Reads the listing's protos directly: the SDK's per-row conversion decodes every search
        attribute twice (typed and untyped), which cost more than the call itself for 1,000 rows.
        """
        out: list[RunSummary] = []
        token = b""
        while len(out) < limit:
            resp = await self.temporal.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(
                namespace=self.temporal.namespace, query=query or "", page_size=min(limit - len(out), 1000),
                next_page_token=token))
            out += [_summary_of(info) for info in resp.executions]
            token = resp.next_page_token
            if not token:
                break
        return out[:limit]

    async def _mark_stuck(self, runs: list[RunSummary]) -> list[RunSummary]:
        """The runs, running ones that cannot move marked `stuck` with the reason (20 checked at once)."""

        async def check(r: RunSummary) -> RunSummary:
            if r.status != "running":
                return r
            try:
                why = await stuck_reason(self.temporal, r.id)
            except RPCError:
                return r
            return replace(r, status="stuck", stuck=why) if why else r

        checked = 0
        out: list[RunSummary] = []
        for i in range(0, len(runs), 20):
            batch = runs[i:i + 20]
            if checked >= STUCK_CHECKS:  # a page of thousands of running runs stays one call
                out += batch
                continue
            checked += sum(1 for r in batch if r.status == "running")
            out += await asyncio.gather(*(check(r) for r in batch))
        return out

    async def terminate(self, run_id: str, reason: str) -> None:
        """End a run at once, without running any of its code (for runs no worker can run).

        Raises:
            RunNotFound: No run with this id is open.
        """
        try:
            await self.temporal.get_workflow_handle(run_id).terminate(reason=reason)
        except RPCError as exc:
            raise _not_found(run_id, exc) from None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
STARTED_BY = "tether.started_by"
"""Memo key of who started a run (`Client.start(started_by=...)`)."""


def new_run_id(workflow: str) -> str:
    """A fresh run id for `workflow`: `<workflow>-<12 hex digits>`."""
    return f"{workflow}-{uuid.uuid4().hex[:12]}"


def resolve_workflow(workflow: Workflow[Any, Any] | str) -> Workflow[Any, Any]:
    """The workflow object for a name or object, or `UnknownWorkflow` listing the known ones."""
    if isinstance(workflow, Workflow):
        return workflow
    found = _registry.workflows.get(workflow)
    if found is None:
        raise UnknownWorkflow(workflow, list(_registry.workflows))
    return found


def list_query(*, workflow: str | None = None, status: str | None = None, task_queue: str | None = None,
               id_prefix: str | None = None) -> str | None:
    """The visibility query of a listing ("stuck" asks for running runs), None for all runs."""
    clauses = []
    if id_prefix:
        clauses.append(f"WorkflowId STARTS_WITH '{_quote(id_prefix)}'")
    if task_queue:
        clauses.append(f"TaskQueue = '{_quote(task_queue)}'")
    if workflow:
        clauses.append(f"WorkflowType = '{_quote(workflow)}'")
    if status:  # "stuck" runs are running ones that cannot move
        clauses.append(f"ExecutionStatus = '{_status_query('running' if status == 'stuck' else status)}'")
    return " AND ".join(clauses) or None


_STATUS_OF = {int(k): v for k, v in _STATUS.items()}
_OPEN_TASKS = "TetherOpenTasks"


def _summary_of(info: WorkflowExecutionInfo) -> RunSummary:
    """A listing row as a `RunSummary`, reading only the fields a listing shows."""
    tasks = info.search_attributes.indexed_fields.get(_OPEN_TASKS) if info.search_attributes.indexed_fields else None
    return RunSummary(
        id=info.execution.workflow_id, workflow=info.type.name,
        status=_STATUS_OF.get(info.status, "unknown"),
        started_at=info.start_time.ToDatetime(UTC) if info.HasField("start_time") else None,
        closed_at=info.close_time.ToDatetime(UTC) if info.HasField("close_time") else None,
        task_queue=info.task_queue,
        open_tasks=len(default_converter().payload_converter.from_payload(tasks) or []) if tasks else 0)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


_QUERY_STATUS = {"running": "Running", "completed": "Completed", "failed": "Failed",
                 "cancelled": "Canceled", "terminated": "Terminated", "timed out": "TimedOut"}


def _status_query(status: str) -> str:
    try:
        return _QUERY_STATUS[status.lower()]
    except KeyError:
        raise UsageError(f"unknown status {status!r}; use one of: "
                         f"{', '.join(_QUERY_STATUS)}") from None


__all__ = ["Client", "Run", "RunDetail", "RunSummary"]


def _dict_or_none(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None
