"""Tracing and metrics around Temporal: the run, each step, each attempt, each model call.

Interceptors installed on clients and workers (see `interceptors`). Temporal's own
OpenTelemetry interceptor carries the trace context in Temporal headers (client -> run ->
steps on any worker, in any zone -> child runs); tether's interceptor adds the spans:

    run <workflow>                      workflow code (replay-safe, real duration)
      step <name>                       workflow code: the step from scheduling to result
        attempt <name>                  the worker running the attempt (one per retry)
        chat <model>                    ...or, for a model call, the GenAI span
      human_task <kind>                 from opening to answer/expiry
      execute_tool <name>               see `tool_call`

Workflow-side spans come from the replay-safe tracer provider: on replay (another worker
taking a run over) they are rebuilt with the same ids and times and not exported again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from temporalio import activity, workflow
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from tether import budget
from tether._runtime import queue_zone
from tether.engine.durable import run_state
from tether.errors import EgressBlocked
from tether.observe import _metrics, _setup
from tether.observe import _spans as S
from tether.observe._models import model_request
from tether.observe._run import RUN_KEY, egress_span, ns, replaying, run_telemetry

MODEL_STEP = "tether.llm"
"""The activity type of model calls (`tether.llm.STEP_NAME`)."""



class TetherTracing(ClientInterceptor, Interceptor):
    """tether's spans and metrics on workers (clients only need Temporal's propagation)."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _StepAttempts(next)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _RunSpans


def interceptors() -> list[Any]:
    """The interceptors a traced client (and the workers made from it) use."""
    from temporalio.contrib.opentelemetry import OpenTelemetryInterceptor

    _setup.tracer_provider()  # Temporal's interceptor needs the replay-safe provider installed
    return [OpenTelemetryInterceptor(), TetherTracing()]


def client_interceptors(telemetry: bool | None = None) -> list[Any]:
    """Interceptors for a new Temporal client (its workers inherit them): none when telemetry is off.

    Args:
        telemetry: Force on or off; None decides from `TETHER_TELEMETRY` and whether spans
            or metrics go anywhere in this process.
    """
    return interceptors() if _setup.telemetry_wanted(telemetry) else []


def worker_interceptors(client_interceptors_: Sequence[Any], telemetry: bool | None = None) -> list[Any]:
    """Interceptors a worker adds to those of its client (tether's, if the client lacks them)."""
    return [] if has_tracing(client_interceptors_) else client_interceptors(telemetry)


def has_tracing(items: Sequence[Any]) -> bool:
    """True when `items` (a client's interceptors) already include tether's."""
    return any(isinstance(i, TetherTracing) for i in items)


# ---- workflow code ---------------------------------------------------------------------


class _RunSpans(WorkflowInboundInterceptor):
    """The run span around the workflow function, and step spans around scheduled activities."""

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_StepSpans(outbound))

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        info = workflow.info()
        attrs = {S.RUN_ID: info.workflow_id, S.WORKFLOW: info.workflow_type,
                 "tether.temporal.run_id": info.run_id, "tether.task_queue": info.task_queue}
        if info.attempt > 1 or info.continued_run_id:
            attrs["tether.continued_from"] = info.continued_run_id or ""
        span = _setup.tracer().start_span(f"{S.RUN} {info.workflow_type}", kind=SpanKind.SERVER,
                                          attributes=attrs, start_time=ns(info.start_time))
        run_state()[RUN_KEY] = {"span": span, "tasks": {}}
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            result = await super().execute_workflow(input)
        except GeneratorExit:
            raise  # evicted from this worker's cache (e.g. shutdown): the run goes on elsewhere
        except BaseException as exc:
            _end_run(span, info.workflow_type, exc)
            raise
        finally:
            S.detach(token)
        _end_run(span, info.workflow_type, None)
        return result


def _end_run(span: Span, workflow_type: str, exc: BaseException | None) -> None:
    if replaying():
        return  # evicted, or replaying: the run goes on elsewhere
    if exc is None:
        outcome = "completed"
        span.set_status(Status(StatusCode.OK))
    elif isinstance(exc, workflow.ContinueAsNewError):
        outcome = "continued"
    elif _is_cancel(exc):
        outcome = "cancelled"
    elif workflow.is_failure_exception(exc):
        outcome = "failed"
        S.record_error(span, exc, timestamp=workflow.time_ns())
        blocked = S.find_in_chain(exc, EgressBlocked)  # raised by workflow code itself
        if blocked is not None:
            egress_span(blocked)
    else:
        return  # a bug in workflow code fails the task, not the run; it is retried
    span.set_attribute(S.OUTCOME, outcome)
    ledger = budget.current()
    if ledger is not None:  # for `tether stats`: how close runs come to their budget
        limit, share = ledger.most_used()
        span.set_attributes({S.BUDGET_LIMIT: limit, S.BUDGET_USED: share, S.BUDGET_RAISED: ledger.raises})
    span.end(end_time=workflow.time_ns())
    _metrics.run_finished(workflow_type, outcome)


def _is_cancel(exc: BaseException) -> bool:
    import asyncio

    from temporalio.exceptions import CancelledError, is_cancelled_exception

    return isinstance(exc, asyncio.CancelledError | CancelledError) or is_cancelled_exception(exc)


class _StepSpans(WorkflowOutboundInterceptor):
    """Opens a span per scheduled step; Temporal's interceptor (next) puts it in the headers."""

    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        if run_telemetry() is None:
            return super().start_activity(input)
        span = _setup.tracer().start_span(f"{S.STEP} {input.activity}", kind=SpanKind.INTERNAL,
                                          attributes=_step_attrs(input), start_time=workflow.time_ns())
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            handle = super().start_activity(input)
        finally:
            S.detach(token)
        handle.add_done_callback(lambda h: _end_step(span, h))
        return handle


def _step_attrs(input: StartActivityInput) -> dict[str, Any]:
    info = workflow.info()
    queue = input.task_queue or info.task_queue
    attrs: dict[str, Any] = {S.RUN_ID: info.workflow_id, S.WORKFLOW: info.workflow_type,
                             S.STEP_NAME: input.activity, "tether.step.id": input.activity_id or ""}
    if "@" in queue:
        attrs[S.STEP_ZONE] = queue.split("@", 1)[1]
    if input.retry_policy is not None:
        attrs[S.STEP_MAX_ATTEMPTS] = input.retry_policy.maximum_attempts
    if input.activity == MODEL_STEP and input.args:
        attrs.update(model_request(input.args[0], content=False))
    return attrs


def _end_step(span: Span, handle: Any) -> None:
    if replaying():
        return
    end = workflow.time_ns()
    if handle.cancelled():
        span.set_attribute(S.OUTCOME, "cancelled")
    elif (exc := handle.exception()) is not None:
        cause = getattr(exc, "cause", None) or exc
        span.set_attribute(S.OUTCOME, "failed")
        retry_state = getattr(exc, "retry_state", None)
        if retry_state is not None:
            span.set_attribute("tether.step.retry_state", getattr(retry_state, "name", str(retry_state)))
        S.record_error(span, cause, timestamp=end)
    else:
        span.set_attribute(S.OUTCOME, "ok")
        span.set_status(Status(StatusCode.OK))
    span.end(end_time=end)


# ---- step attempts (on the worker running them) ---------------------------------------


class _StepAttempts(ActivityInboundInterceptor):
    """One span per step attempt (model calls add their GenAI span inside it), and step metrics."""

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        attrs = _attempt_attrs(info)
        span = _setup.tracer().start_span(f"{S.ATTEMPT} {info.activity_type}", attributes=attrs)
        started = time.perf_counter()
        with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
            try:
                result = await super().execute_activity(input)
            except BaseException as exc:
                _attempt_failed(span, info, exc, attrs, time.perf_counter() - started)
                raise
        span.set_attribute(S.OUTCOME, "ok")
        span.set_status(Status(StatusCode.OK))
        span.end()
        _metrics.step_attempt(info.activity_type, attrs.get(S.STEP_ZONE), "ok", info.attempt,
                              time.perf_counter() - started)
        return result


def _attempt_attrs(info: activity.Info) -> dict[str, Any]:
    attrs: dict[str, Any] = {S.RUN_ID: info.workflow_id or "", S.WORKFLOW: info.workflow_type or "",
                             S.STEP_NAME: info.activity_type, S.STEP_ATTEMPT: info.attempt,
                             "tether.step.id": info.activity_id}
    zone = queue_zone(info.task_queue)
    if zone is not None:
        attrs[S.STEP_ZONE] = zone
    if info.retry_policy is not None:
        attrs[S.STEP_MAX_ATTEMPTS] = info.retry_policy.maximum_attempts
    return attrs


def _attempt_failed(span: Span, info: activity.Info, exc: BaseException, attrs: dict[str, Any],
                    seconds: float) -> None:
    outcome = "failed" if _final(info, exc) else "retry"
    span.set_attribute(S.OUTCOME, outcome)
    S.record_error(span, exc)
    blocked = S.find_in_chain(exc, EgressBlocked)
    if blocked is not None:
        egress_span(blocked)
    span.end()
    _metrics.step_attempt(info.activity_type, attrs.get(S.STEP_ZONE), outcome, info.attempt, seconds)


def _final(info: activity.Info, exc: BaseException) -> bool:
    if isinstance(exc, ApplicationError) and exc.non_retryable:
        return True
    policy = info.retry_policy
    if policy is None:
        return False
    if S.error_type(exc) in (policy.non_retryable_error_types or ()):
        return True
    return bool(policy.maximum_attempts) and info.attempt >= policy.maximum_attempts


# ---- other spans -------------------------------------------------------------------------


class ReplaySafeProviders:
    """Tracer providers made with temporalio's replay-safe provider (workflow spans keep
    their ids and times when a run is replayed on another worker)."""

    def accepts(self, provider: Any) -> bool:
        from temporalio.contrib.opentelemetry import ReplaySafeTracerProvider

        return isinstance(provider, ReplaySafeTracerProvider)

    def create(self, resource: Any) -> Any:
        from temporalio.contrib.opentelemetry import create_tracer_provider

        return create_tracer_provider(resource=resource, shutdown_on_exit=False)
