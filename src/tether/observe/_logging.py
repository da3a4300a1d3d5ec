"""Structured logs: every line carries run id, workflow, step, attempt and trace id.

Runs in every process. `setup_logging` (called by `tether worker` / `tether dev`) writes
JSON lines when stderr is not a terminal and readable lines when it is, and drops lines
that workflow code logs again while it replays. `log` is replay-safe on its own, so it
can be used inside workflows whatever the logging setup.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

from tether import settings

_FIELDS = ("run_id", "workflow", "step", "attempt", "trace_id", "span_id")


def run_context() -> dict[str, Any]:
    """Run id, workflow, step, attempt and trace/span ids of the code running now (those known)."""
    out: dict[str, Any] = {}
    try:
        from temporalio import activity, workflow

        if workflow.in_workflow():
            info = workflow.info()
            out.update(run_id=info.workflow_id, workflow=info.workflow_type)
        elif activity.in_activity():
            a = activity.info()
            out.update(run_id=a.workflow_id, workflow=a.workflow_type, step=a.activity_type, attempt=a.attempt)
    except Exception:  # e.g. a read-only workflow context
        pass
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        out.update(trace_id=f"{ctx.trace_id:032x}", span_id=f"{ctx.span_id:016x}")
    return out


def replaying() -> bool:
    """True in workflow code that is replaying history (its log lines were already written)."""
    try:
        from temporalio import workflow

        return workflow.in_workflow() and workflow.unsafe.is_replaying()
    except Exception:
        return False


class RunContextFilter(logging.Filter):
    """Adds the run context to records and drops records logged by replaying workflow code."""

    def filter(self, record: logging.LogRecord) -> bool:
        if replaying():
            return False
        for key, value in run_context().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, run context, exception.

    Known sensitive values are replaced by their labels.
    """

    def format(self, record: logging.LogRecord) -> str:
        from tether.observe._spans import safe_text

        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name,
            "message": safe_text(record.getMessage(), 20_000),
        }
        for key in _FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["exception"] = safe_text(self.formatException(record.exc_info), 20_000)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal: the message, then the run context in brackets."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        from tether.observe._spans import safe_text

        line = safe_text(super().format(record), 20_000)
        ctx = [f"{k}={getattr(record, k)}" for k in ("run_id", "step", "attempt", "trace_id")
               if getattr(record, k, None) is not None]
        return f"{line}  [{' '.join(ctx)}]" if ctx else line


_PROGRAMMING_ERRORS = (TypeError, AttributeError, NameError, KeyError, IndexError, AssertionError,
                       ZeroDivisionError, ImportError, SyntaxError, UnboundLocalError)


class StepFailureLines(logging.Filter):
    """Turns the SDK's log of a failed step attempt (a ~28-line traceback each time) into one
    line: run, step, attempt, error and when it is retried. The traceback stays for
    programming errors and for the last attempt of an error that is not tether's, and for
    everything under `--debug` (TETHER_DEBUG=1)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "__temporal_error_identifier", None) != "ActivityFailure" or not record.exc_info:
            return True
        if settings.current().debug:
            return True
        exc = record.exc_info[1]
        if exc is None:
            return True
        info = getattr(record, "temporal_activity", None) or {}
        retry = _next_retry(exc)
        cause = exc.__cause__ if exc.__cause__ is not None and _is_wrapper(exc) else exc
        text = (str(cause).splitlines() or [""])[0]
        record.msg = (f"step {info.get('activity_type', '?')!r} attempt {info.get('attempt', '?')} failed: "
                      f"{_error_type(exc, cause)}: {text}; {retry}")
        record.args = ()
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        if not isinstance(cause, _PROGRAMMING_ERRORS) and not (retry == "no retries left" and not _is_wrapper(exc)):
            record.exc_info, record.exc_text = None, None
        return True


def _is_wrapper(exc: BaseException) -> bool:
    from temporalio.exceptions import ApplicationError

    return isinstance(exc, ApplicationError)


def _error_type(exc: BaseException, cause: BaseException) -> str:
    kind = getattr(exc, "type", None)
    return str(kind) if kind else type(cause).__name__


def _next_retry(exc: BaseException) -> str:
    """When the engine retries the attempt that raised `exc` (read from the running attempt)."""
    from temporalio import activity

    try:
        info = activity.info()
    except RuntimeError:
        return "retried per the step's policy"
    policy = info.retry_policy
    if getattr(exc, "non_retryable", False) or policy is None:
        return "no retries left" if getattr(exc, "non_retryable", False) else "retried per the step's policy"
    never = policy.non_retryable_error_types or ()
    if type(exc).__name__ in never or getattr(exc, "type", None) in never:
        return "no retries left"
    if policy.maximum_attempts and info.attempt >= policy.maximum_attempts:
        return "no retries left"
    delay = getattr(exc, "next_retry_delay", None)
    seconds = delay.total_seconds() if delay else policy.initial_interval.total_seconds() * (
        policy.backoff_coefficient ** (info.attempt - 1))
    if policy.maximum_interval:
        seconds = min(seconds, policy.maximum_interval.total_seconds())
    return f"retry {info.attempt + 1} in {seconds:g}s"


_handler: logging.Handler | None = None


def setup_logging(level: int | str | None = None, *, json_lines: bool | None = None,
                  stream: TextIO | None = None) -> logging.Handler:
    """Send logs (tether's, Temporal's, the application's) to stderr with the run context.

    Args:
        level: Root level (default `TETHER_LOG_LEVEL`, else INFO).
        json_lines: JSON lines (default: when the stream is not a terminal).
        stream: Where to write (default stderr).

    Returns:
        The handler installed on the root logger (replacing one installed earlier by this function).
    """
    global _handler
    out = stream or sys.stderr
    as_json = json_lines if json_lines is not None else not _isatty(out)
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if as_json else TextFormatter())
    handler.addFilter(RunContextFilter())
    handler.addFilter(StepFailureLines())
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(level or settings.current().log_level)
    _handler = handler
    return handler


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class RunLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger for workflow and step code: adds the run context, and stays silent while
    workflow code replays, whatever handlers are configured.

    Example:
        >>> tether.log.info("invoice %s has %d lines", inv.id, len(inv.lines))
    """

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if replaying():
            return
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = {**run_context(), **(kwargs.get("extra") or {})}
        kwargs["extra"] = extra
        return msg, kwargs


log = RunLogger(logging.getLogger("tether.run"), {})
"""tether's logger for workflow and step code (`tether.log.info(...)`)."""


def replay_safe_log(logger: logging.Logger, level: int, message: str) -> None:
    """Log `message` with the run context unless workflow code is replaying."""
    if not replaying():
        logger.log(level, message, extra=run_context())
