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

from pathlib import Path

from tether import settings
from tether.observe import _tasks  # noqa: F401  (human tasks as spans: subscribes to the engine's events)
from tether.observe._logging import RunLogger, log, setup_logging
from tether.observe._notes import decide, note
from tether.observe._run import egress_span, tracing_here
from tether.observe._setup import (
    GENAI_CONTENT_ENV,
    STORE_FILE,
    capture_content,
    capture_metrics,
    capture_spans,
    env_flag,
    flush,
    serve_metrics,
    set_capture_content,
    store_path,
    tracer_provider,
    use_store,
)
from tether.observe._store import SpanStore, StoredSpan
from tether.observe._tools import tool_call


def egress_blocked(error: BaseException) -> None:
    """Record an `EgressBlocked` as a span in the current trace (the block itself stays raised).

    Step attempts record the blocks they raise on their own; call this where a block is
    caught and handled, e.g. in workflow code that falls back to a local model.
    """
    if tracing_here():
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
    tracer_provider()  # reads OTEL_EXPORTER_OTLP_* now, so the first client traces


__all__ = [
    "STORE_FILE",
    "RunLogger",
    "SpanStore",
    "StoredSpan",
    "capture_content",
    "capture_metrics",
    "capture_spans",
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
]
