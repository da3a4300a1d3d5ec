"""Runs that say `running` but cannot move: why, in words that say what to do.

Runs wherever a client runs (CLI, Studio). A run is stuck when its workflow task keeps failing
(its code changed incompatibly, its workflow is not registered on the worker, its code raises)
or when no worker has taken its workflow task for a while.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, PendingWorkflowTaskState, WorkflowTaskFailedCause
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    DescribeWorkflowExecutionResponse,
    GetWorkflowExecutionHistoryReverseRequest,
)
from temporalio.client import Client as TemporalClient

UNTAKEN_AFTER = 10.0
"""Seconds a workflow task may wait for a worker before the run is called stuck."""

_SCHEDULED_EVENT = re.compile(r"scheduled event '([^']+)'")


def explain(message: str, *, cause: int, workflow: str, queue: str) -> str:
    """What a failing workflow task means for the person looking at the run, and the fix."""
    first = (message.splitlines() or [""])[0]
    if "is not registered on this worker" in first:
        return (f"workflow {workflow!r} is not registered on the worker serving queue {queue!r}: "
                "start a worker for the app that defines it")
    if cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR \
            or "nondeterminism" in first.lower():
        found = _SCHEDULED_EVENT.search(first)
        at = f" at step {found.group(1)!r}" if found else ""
        return (f"its code changed incompatibly{at}: wrap the change in tether.patched(...) so runs "
                "started with the old code keep it, deploy that, and the run resumes")
    return f"its workflow code fails: {first}"


async def stuck_reason(temporal: TemporalClient, run_id: str) -> str | None:
    """Why the running run `run_id` cannot progress, or None when it can."""
    desc = await temporal.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(namespace=temporal.namespace,
                                         execution=WorkflowExecution(workflow_id=run_id)))
    return await why_stuck(temporal, run_id, desc)


async def why_stuck(temporal: TemporalClient, run_id: str, desc: DescribeWorkflowExecutionResponse) -> str | None:
    """`stuck_reason` from a description already fetched (one engine call fewer)."""
    queue = desc.execution_config.task_queue.name
    workflow = desc.workflow_execution_info.type.name
    if not desc.HasField("pending_workflow_task"):
        return None
    task = desc.pending_workflow_task
    if task.attempt > 1:
        return await _last_task_failure(temporal, run_id, queue, workflow)
    if task.state == PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED:
        since = task.original_scheduled_time.ToDatetime(tzinfo=UTC)
        idle = (datetime.now(UTC) - since).total_seconds()
        if idle >= UNTAKEN_AFTER:
            return f"no worker has taken it for {idle:.0f}s: is a worker serving queue {queue!r} running?"
    return None


async def _last_task_failure(temporal: TemporalClient, run_id: str, queue: str, workflow: str) -> str:
    resp = await temporal.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(namespace=temporal.namespace,
                                                  execution=WorkflowExecution(workflow_id=run_id),
                                                  maximum_page_size=50))
    for ev in resp.history.events:
        if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attrs = ev.workflow_task_failed_event_attributes
            error = await temporal.data_converter.decode_failure(attrs.failure)
            return explain(str(error), cause=attrs.cause, workflow=workflow, queue=queue)
    return "its workflow task keeps failing"


__all__ = ["explain", "stuck_reason", "why_stuck"]
