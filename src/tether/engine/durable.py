"""How tether's workflows and steps become Temporal workflows and activities.

Runs in two places: inside the Temporal workflow sandbox (scheduling steps, child runs,
timers) and on workers (the activity wrappers around step functions).
"""

from __future__ import annotations

import functools
import inspect
import weakref
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy as TemporalRetryPolicy
from temporalio.common import VersioningBehavior
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    RetryState,
    TimeoutType,
)
from temporalio.exceptions import TimeoutError as StepTimeout

from tether import budget
from tether._runtime import base_queue, limit_queue, zone_queue
from tether.durations import parse_duration
from tether.engine import liveness
from tether.engine.boundary import zone_bound
from tether.engine.spending import run_spent
from tether.engine.tasks import TaskHandlers
from tether.errors import ERROR_DETAIL, BudgetExceeded, RunFailed, StepFailed, TetherError, error_data, error_from_data

if TYPE_CHECKING:
    from tether.step import Step, StepOptions
    from tether.workflow import Workflow
_RUN_STATE: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def run_state() -> dict[str, Any]:
    """A dict private to the current run on this worker; it goes when the run leaves the cache
    and is rebuilt by replay, so only keep what workflow code derives deterministically."""
    return _RUN_STATE.setdefault(workflow.instance(), {})


def retry_policy(step: Step[Any, Any], options: StepOptions | None = None) -> TemporalRetryPolicy:
    """The Temporal retry policy for a step's options (or for `options` given for one call)."""
    opts = options or step.options
    r = opts.retry
    return TemporalRetryPolicy(
        maximum_attempts=r.max_attempts,
        initial_interval=parse_duration(r.initial_interval),
        maximum_interval=parse_duration(r.max_interval),
        backoff_coefficient=r.backoff,
        non_retryable_error_types=list(opts.non_retryable),
    )


async def execute_step(step: Step[Any, Any], args: Sequence[Any], kwargs: dict[str, Any], *,
                       attempts: int | None = None, options: StepOptions | None = None) -> Any:
    """Schedule the activity (with `attempts` overriding the step's maximum attempts, and
    `options` replacing the step's options for this call, as model calls do)."""
    opts = options or step.options
    if opts.local:
        return await _execute_local(step, args, kwargs, attempts=attempts, options=opts)
    queue = zone_queue(base_queue(workflow.info().task_queue), opts.runs_on)
    if opts.limit is not None:  # a rate-limited call waits in its key's queue, dispatched at the key's rate
        queue = limit_queue(queue, opts.limit)
    policy = retry_policy(step, opts)
    # the engine allows a few more attempts than the step, for attempts lost with their
    # workers; the step's own budget is kept on the worker (liveness)
    policy.maximum_attempts = liveness.engine_attempts(attempts if attempts is not None else policy.maximum_attempts)
    try:
        return await workflow.execute_activity(
            step.name,
            args=step.bind_args(args, kwargs),
            task_queue=queue,
            start_to_close_timeout=opts.timeout,
            heartbeat_timeout=opts.heartbeat or liveness.default_heartbeat_timeout(),
            retry_policy=policy,
            result_type=step.return_type,
        )
    except ActivityError as exc:
        raise step_failed(step.name, exc) from exc


async def _execute_local(step: Step[Any, Any], args: Sequence[Any], kwargs: dict[str, Any], *,
                         attempts: int | None, options: StepOptions) -> Any:
    """Run a `local=True` step as a Temporal local activity on this worker. Its attempts are the
    step's own: no attempt is lost with a worker here, the workflow task reruns it instead."""
    policy = retry_policy(step, options)
    if attempts is not None:
        policy.maximum_attempts = attempts
    try:
        return await workflow.execute_local_activity(
            step.name,
            args=step.bind_args(args, kwargs),
            start_to_close_timeout=options.timeout,
            retry_policy=policy,
            result_type=step.return_type,
        )
    except ActivityError as exc:
        raise step_failed(step.name, exc) from exc
    except (ApplicationError, StepTimeout) as exc:  # temporalio hands a local activity's failure over unwrapped
        final = isinstance(exc, ApplicationError) and (exc.non_retryable or exc.type in options.non_retryable)
        state = RetryState.TIMEOUT if isinstance(exc, StepTimeout) else \
            RetryState.NON_RETRYABLE_FAILURE if final else RetryState.MAXIMUM_ATTEMPTS_REACHED
        raise failed_with(step.name, exc, state) from exc


def step_failed(name: str, exc: ActivityError) -> BaseException:
    """Translate Temporal's activity error into the `StepFailed` a workflow author expects."""
    return failed_with(name, exc.cause, exc.retry_state, exc)


def failed_with(name: str, cause: BaseException | None, retry_state: RetryState | None,
                exc: BaseException | None = None) -> BaseException:
    """The `StepFailed` for a step whose last attempt failed with `cause` (`retry_state`: why it stopped)."""
    if isinstance(cause, CancelledError):
        return cause
    if isinstance(cause, ApplicationError) and isinstance(cause.cause, ApplicationError) \
            and cause.message == "Failed decoding arguments":
        cause = cause.cause  # the codec's own error (e.g. DecryptionFailed) says what to fix
    error_type = cause.type if isinstance(cause, ApplicationError) and cause.type else ""
    message = getattr(cause, "message", None) or str(cause or exc)
    spent = isinstance(cause, ApplicationError) and bool(cause.details) and cause.details[-1] == liveness.SPENT
    reason = "retries exhausted" if spent else {
        RetryState.NON_RETRYABLE_FAILURE: "non-retryable",
        RetryState.MAXIMUM_ATTEMPTS_REACHED: "retries exhausted",
        RetryState.TIMEOUT: "timed out",
    }.get(retry_state, "failed") if retry_state else "failed"
    if isinstance(cause, StepTimeout):
        error_type = error_type or "Timeout"
        if cause.type == TimeoutType.HEARTBEAT:
            message = "its worker was lost (no heartbeat within the step's heartbeat timeout)"
    what = f"{error_type}: {message}" if error_type else message
    return StepFailed(f"step {name!r} failed ({reason}): {what}", step=name,
                      error_type=error_type, reason=reason, error_message=message, error=_typed(cause))


def _typed(cause: BaseException | None) -> TetherError | None:
    """The tether error a step raised, rebuilt from the failure's details (see `error_data`)."""
    details = cause.details if isinstance(cause, ApplicationError) else ()
    first = details[0] if details else None
    return error_from_data(first.get(ERROR_DETAIL)) if isinstance(first, dict) else None


async def run_child(wf: Workflow[Any, Any], args: list[Any]) -> Any:
    """Run `wf` as a child workflow of the current one and return its result."""
    info = workflow.info()
    child_id = f"{info.workflow_id}/{wf.name}-{workflow.uuid4().hex[:8]}"
    left = budget.for_child()  # a child spends from its parent's budget
    try:
        result = await workflow.execute_child_workflow(
            wf.name, args=args, id=child_id, task_queue=base_queue(info.task_queue),
            result_type=wf.return_type, memo={budget.INHERITED: left} if left is not None else None,
        )
    except ChildWorkflowError as exc:
        if left is not None:
            budget.child_spent(await execute_step(run_spent, [child_id], {}))
        cause = exc.cause
        spent = _typed(cause)
        if isinstance(spent, BudgetExceeded):  # the child spent what its parent had left
            raise spent from None
        message = getattr(cause, "message", None) or str(exc)
        error_type = getattr(cause, "type", "") or ""
        raise RunFailed(child_id, message, error_type=error_type) from exc
    if left is not None:
        budget.child_spent(await execute_step(run_spent, [child_id], {}))
    return result


# ---- the generated Temporal definitions ------------------------------------------------


VERSIONING_BEHAVIOR = {None: VersioningBehavior.UNSPECIFIED, "pinned": VersioningBehavior.PINNED,
                       "auto-upgrade": VersioningBehavior.AUTO_UPGRADE}
"""`@tether.workflow(versioning=)` as Temporal's versioning behavior (unspecified: the worker's default)."""


def workflow_class(wf: Workflow[Any, Any]) -> type:
    """Generate the Temporal workflow class that runs `wf.fn`.

    Temporal's sandbox re-imports the function's module for every run and imports the
    class from it by name, so the class is also set as an attribute of that module.
    """
    fn = wf.fn

    async def run(self: Any, *args: Any) -> Any:
        try:
            return await wf.run_body(*args)
        except TetherError as exc:  # its typed fields travel with the failure, as a step's do
            raise _as_application_error(exc) from exc

    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    annotations: dict[str, Any] = {}
    if wf.input_name is not None:
        params.append(inspect.Parameter(wf.input_name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        annotation=wf.input_type))
        annotations[wf.input_name] = wf.input_type
    annotations["return"] = wf.return_type
    run.__signature__ = inspect.Signature(params, return_annotation=wf.return_type)  # type: ignore[attr-defined]
    run.__annotations__ = annotations
    class_name = f"_TetherWorkflow_{fn.__name__}"
    run.__name__, run.__qualname__, run.__module__ = "run", f"{class_name}.run", fn.__module__
    cls = type(class_name, (TaskHandlers,), {"run": workflow.run(run), "__module__": fn.__module__,
                                "__qualname__": class_name, "__doc__": fn.__doc__})
    cls = workflow.defn(name=wf.name, failure_exception_types=[TetherError],
                        versioning_behavior=VERSIONING_BEHAVIOR[wf.versioning])(cls)
    import sys

    module = sys.modules.get(fn.__module__)
    if module is not None:
        setattr(module, class_name, cls)
    return cls


def step_activity(step: Step[Any, Any]) -> Callable[..., Any]:
    """Wrap a step's function as a Temporal activity definition (the function is not modified)."""
    fn = zone_bound(step)
    run: Callable[..., Any]

    if step.is_async:

        @functools.wraps(fn)
        async def run_async(*args: Any) -> Any:
            try:
                return await fn(*args)
            except TetherError as exc:
                raise _as_application_error(exc) from exc

        run = run_async
    else:

        @functools.wraps(fn)
        def run_sync(*args: Any) -> Any:
            try:
                return fn(*args)
            except TetherError as exc:
                raise _as_application_error(exc) from exc

        run = run_sync
    # attempts heartbeat on their own unless the step set `heartbeat=` and beats itself; local
    # activities do not heartbeat and keep their own attempt count
    if not step.options.local:
        setattr(run, liveness.PULSE, "manual" if step.options.heartbeat else "auto")
    return activity.defn(name=step.name)(run)


def _as_application_error(exc: TetherError) -> BaseException:
    # always a new error: the callers raise it `from exc`, and an error that is its own cause
    # sends Temporal's failure converter into endless recursion
    retry_after = getattr(exc, "retry_after", None)  # e.g. a provider's Retry-After header
    retryable = getattr(exc, "retryable", True)
    return ApplicationError(str(exc), {ERROR_DETAIL: error_data(exc)}, type=type(exc).__name__,
                            non_retryable=not retryable,
                            next_retry_delay=timedelta(seconds=retry_after) if retry_after else None)
