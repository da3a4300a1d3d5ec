"""Tool calls as `execute_tool` spans (GenAI semantic conventions)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from tether.observe import _setup
from tether.observe import _spans as S
from tether.observe._run import end, now_ns, run_attrs, tracing_here


@contextmanager
def tool_call(name: str, /, *, call_id: str | None = None, tool_type: str = "function",
              arguments: Any = None) -> Iterator[Span]:
    """Trace a tool call as an `execute_tool` span (GenAI conventions); steps run inside it nest under it.

    The agent loop uses it around each tool's step; use it yourself when workflow code
    calls a step on a model's behalf.

    Args:
        name: The tool's name as the model knows it.
        call_id: The model's id for this call, if any.
        tool_type: "function" (a step or plain function) or "extension" (e.g. an MCP server).
        arguments: The call's arguments, recorded only when content capture is on.

    Example:
        >>> with tether.observe.tool_call("lookup_customer", call_id=call.id):
        ...     row = await lookup_customer(call.args["email"])
    """
    active = tracing_here()
    if not active:
        yield trace.INVALID_SPAN
        return
    attrs: dict[str, Any] = {S.GENAI_OPERATION: "execute_tool", S.GENAI_TOOL_NAME: name,
                             S.GENAI_TOOL_TYPE: tool_type}
    if call_id:
        attrs[S.GENAI_TOOL_CALL_ID] = call_id
    if arguments is not None and _setup.capture_content():
        attrs["gen_ai.tool.call.arguments"] = S.attribute_value(arguments)
    attrs.update(run_attrs())
    span = _setup.tracer().start_span(f"{S.TOOL} {name}", kind=SpanKind.INTERNAL, attributes=attrs,
                                      start_time=now_ns())
    token = otel_context.attach(trace.set_span_in_context(span))
    try:
        yield span
    except BaseException as exc:
        S.record_error(span, exc, timestamp=now_ns())
        end(span)
        raise
    finally:
        S.detach(token)
    span.set_status(Status(StatusCode.OK))
    end(span)
