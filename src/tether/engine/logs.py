"""The SDK's log of a failed step attempt, told in one line (see `StepFailureLines`).

Installed on the handlers of `tether.observe.setup_logging` when the engine is imported.
"""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from tether import settings

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
    return isinstance(exc, ApplicationError)


def _error_type(exc: BaseException, cause: BaseException) -> str:
    kind = getattr(exc, "type", None)
    return str(kind) if kind else type(cause).__name__


def _next_retry(exc: BaseException) -> str:
    """When the engine retries the attempt that raised `exc` (read from the running attempt)."""
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
