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
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

from tether import _runtime, settings
from tether.observe._spans import safe_text

_FIELDS = ("run_id", "workflow", "step", "attempt", "trace_id", "span_id")


def run_context() -> dict[str, Any]:
    """Run id, workflow, step, attempt and trace/span ids of the code running now (those known)."""
    out: dict[str, Any] = {}
    rt = _runtime.current()
    try:
        attempt = rt.attempt()
        if attempt is not None:
            out.update(run_id=attempt.run_id, workflow=attempt.workflow, step=attempt.step, attempt=attempt.attempt)
        elif rt.in_workflow():
            out.update(run_id=rt.run_id(), workflow=rt.workflow_name())
    except Exception:  # e.g. a read-only workflow context
        pass
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        out.update(trace_id=f"{ctx.trace_id:032x}", span_id=f"{ctx.span_id:016x}")
    return out


def replaying() -> bool:
    """True in workflow code that is replaying history (its log lines were already written)."""
    try:
        return _runtime.current().replaying()
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
        line = safe_text(super().format(record), 20_000)
        ctx = [f"{k}={getattr(record, k)}" for k in ("run_id", "step", "attempt", "trace_id")
               if getattr(record, k, None) is not None]
        return f"{line}  [{' '.join(ctx)}]" if ctx else line


_filters: list[Callable[[], logging.Filter]] = []


def add_filter(factory: Callable[[], logging.Filter]) -> None:
    """Add a filter to every handler `setup_logging` installs (e.g. the engine's step failure lines)."""
    if factory not in _filters:
        _filters.append(factory)


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
    for factory in _filters:
        handler.addFilter(factory())
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
