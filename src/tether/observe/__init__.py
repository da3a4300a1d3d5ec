"""tether.observe: OpenTelemetry traces, metrics and logs that explain every decision of a run.

One trace per run, across workers and zones: the run, each step and each attempt, each
model call (GenAI semantic conventions: model, tokens, finish reasons, plus cost, repair
round and fallback position), tool calls, human tasks and egress blocks, with the notes
and decisions recorded by `tether.note` / `tether.decide`. Export with the standard
`OTEL_EXPORTER_OTLP_*` variables; `tether dev` also keeps spans in `.tether/traces.db`
for `tether trace` and `tether stats`. Prompts and responses are captured only when
content capture is on (`tether dev`, `--capture-content`, `TETHER_CAPTURE_CONTENT=1`), and
sensitive values never appear in spans or logs.

    >>> if tether.decide("needs_review", invoice.total > LIMIT, total=invoice.total, limit=LIMIT):
    ...     tether.note("over the auto-approval limit")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tether import settings
from tether.observe._decisions import decide, note, tool_call
from tether.observe._logging import RunLogger, log, setup_logging
from tether.observe._setup import (
    STORE_FILE,
    capture_content,
    capture_metrics,
    capture_spans,
    flush,
    serve_metrics,
    set_capture_content,
    store_path,
    telemetry_wanted,
    use_store,
)
from tether.observe._store import SpanStore, StoredSpan


def client_interceptors(telemetry: bool | None = None) -> list[Any]:
    """Interceptors for a new Temporal client (its workers inherit them): none when telemetry is off.

    Args:
        telemetry: Force on or off; None decides from `TETHER_TELEMETRY` and whether spans
            or metrics go anywhere in this process.
    """
    if not telemetry_wanted(telemetry):
        return []
    from tether.observe._temporal import interceptors

    return interceptors()


def worker_interceptors(client_interceptors_: Sequence[Any], telemetry: bool | None = None) -> list[Any]:
    """Interceptors a worker adds to those of its client (tether's, if the client lacks them)."""
    from tether.observe._temporal import has_tracing

    if has_tracing(client_interceptors_):
        return []
    return client_interceptors(telemetry)


def egress_blocked(error: BaseException) -> None:
    """Record an `EgressBlocked` as a span in the current trace (the block itself stays raised).

    Step attempts record the blocks they raise on their own; call this where a block is
    caught and handled, e.g. in workflow code that falls back to a local model.
    """
    from opentelemetry import trace

    from tether.engine import durable

    if not durable.in_workflow() and not trace.get_current_span().is_recording():
        return
    from tether.observe._temporal import egress_span

    egress_span(error)


def setup_process(*, role: str, state_dir: Path | None = None, metrics_port: int | None = None,
                  capture: bool | None = None, logs: bool = True) -> None:
    """Telemetry for a CLI process: logs, the local store (dev), content capture, metrics.

    Args:
        role: "dev" (local store on, content capture on by default), "worker" (capture off
            by default, store only with `TETHER_TRACE_STORE`) or "run" (local store when
            the embedded engine is used).
        state_dir: The project's state folder (`.tether`), for the local store.
        metrics_port: Serve Prometheus metrics on this port.
        capture: Content capture on/off (None: the role's default, or the environment).
        logs: Install the structured log handler.
    """
    from tether.observe._setup import GENAI_CONTENT_ENV, env_flag

    if logs:
        setup_logging()
    if state_dir is not None and role in ("dev", "run"):
        use_store(state_dir / STORE_FILE)
    from_env = settings.current().capture_content is not None or env_flag(GENAI_CONTENT_ENV) is not None
    if capture is None and role in ("dev", "run") and not from_env:
        capture = True
    if capture is not None:
        set_capture_content(capture)
    if metrics_port is not None:
        serve_metrics(metrics_port)
    from tether.observe._setup import tracer_provider

    tracer_provider()  # reads OTEL_EXPORTER_OTLP_* now, so the first client traces


__all__ = [
    "STORE_FILE",
    "RunLogger",
    "SpanStore",
    "StoredSpan",
    "capture_content",
    "capture_metrics",
    "capture_spans",
    "client_interceptors",
    "decide",
    "egress_blocked",
    "flush",
    "log",
    "note",
    "serve_metrics",
    "set_capture_content",
    "setup_logging",
    "setup_process",
    "store_path",
    "tool_call",
    "use_store",
    "worker_interceptors",
]
