"""Span names, attribute conventions and safe values: what tether's spans say and never say.

Pure helpers, usable in workflow code, step attempts and readers alike. Attribute names
follow the OpenTelemetry GenAI semantic conventions where one exists (`gen_ai.*`,
`error.type`) and use `tether.*` for the rest. No raw sensitive value is ever written:
`safe_text` withholds every value this process knows to be sensitive.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Mapping
from contextlib import suppress
from typing import Any, TypeVar

from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from tether._sensitive import redact

RUN = "run"
STEP = "step"
ATTEMPT = "attempt"
TOOL = "execute_tool"
HUMAN = "human_task"
EGRESS = "egress_blocked"
NOTE_EVENT = "tether.note"
DECISION_EVENT = "tether.decision"

RUN_ID = "tether.run_id"
WORKFLOW = "tether.workflow"
OUTCOME = "tether.outcome"
STEP_NAME = "tether.step.name"
STEP_ATTEMPT = "tether.step.attempt"
STEP_MAX_ATTEMPTS = "tether.step.max_attempts"
STEP_ZONE = "tether.step.zone"
ERROR_TYPE = "error.type"
BUDGET_LIMIT = "tether.budget.limit"  # on a run span: the budget's limit closest to spent
BUDGET_USED = "tether.budget.used_share"  # the share of that limit used when the run ended
BUDGET_RAISED = "tether.budget.raised"  # times a person raised the budget

GENAI_OPERATION = "gen_ai.operation.name"
GENAI_PROVIDER = "gen_ai.provider.name"
GENAI_REQUEST_MODEL = "gen_ai.request.model"
GENAI_RESPONSE_MODEL = "gen_ai.response.model"
GENAI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GENAI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GENAI_FINISH_REASONS = "gen_ai.response.finish_reasons"
GENAI_INPUT_MESSAGES = "gen_ai.input.messages"
GENAI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GENAI_OUTPUT_TYPE = "gen_ai.output.type"
GENAI_TEMPERATURE = "gen_ai.request.temperature"
GENAI_MAX_TOKENS = "gen_ai.request.max_tokens"
GENAI_TOOL_NAME = "gen_ai.tool.name"
GENAI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GENAI_TOOL_TYPE = "gen_ai.tool.type"
LLM_COST = "tether.llm.cost_usd"
LLM_REPAIR = "tether.llm.repair"
LLM_FALLBACK = "tether.llm.fallback"
LLM_PURPOSE = "tether.llm.purpose"
LLM_REASON = "tether.llm.reason"
LLM_OUTPUT_NAME = "tether.llm.output_type"

_PROVIDERS = {"openai": "openai", "mistral": "mistral_ai", "anthropic": "anthropic",
              "local": "llama_cpp", "ollama": "ollama", "openai-compatible": "openai"}

MAX_TEXT = 4000
"""Longest string attribute written (longer ones are cut with a marker)."""


E = TypeVar("E", bound=BaseException)


def provider_name(provider: str) -> str:
    """The `gen_ai.provider.name` for a tether provider ("mistral" -> "mistral_ai")."""
    return _PROVIDERS.get(provider, provider)


def safe_text(text: str, limit: int = MAX_TEXT) -> str:
    """`text` with every sensitive value this process has seen withheld (`tether._sensitive.redact`),
    cut to `limit` characters.

    Example:
        >>> safe_text("SSN is 123-45-6789")   # after a step here stored or revealed it as "ssn"
        'SSN is <ssn withheld>'
    """
    text = redact(text)
    if len(text) > limit:
        text = text[: limit - 12] + f"…(+{len(text) - limit + 12})"
    return text


def attribute_value(value: Any) -> AttributeValue:
    """A value fit for a span attribute: primitives as they are, anything else as safe JSON text.

    A sensitive handle becomes its marker (label, zone, preview), never the value.
    """
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return safe_text(value)
    if value is None:
        return "null"
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return [safe_text(v) for v in value]
    if _is_handle(value):
        return str(value)
    try:
        from pydantic_core import to_jsonable_python

        text = json.dumps(to_jsonable_python(value, fallback=str), ensure_ascii=False, default=str)
    except Exception:
        text = repr(value)
    return safe_text(text)


def _is_handle(value: Any) -> bool:
    return type(value).__name__.startswith("Sensitive") and hasattr(value, "zone") and hasattr(value, "label")


def attributes(prefix: str, values: Mapping[str, Any]) -> dict[str, AttributeValue]:
    """`values` as span attributes named `prefix.key`."""
    return {f"{prefix}.{k}": attribute_value(v) for k, v in values.items()}


def record_error(span: Span, exc: BaseException, *, timestamp: int | None = None) -> None:
    """Mark `span` failed with `exc`: status, `error.type` and an `exception` event, all redacted."""
    kind = error_type(exc)
    message = safe_text(error_message(exc), 1000)
    span.set_attribute(ERROR_TYPE, kind)
    span.set_status(Status(StatusCode.ERROR, f"{kind}: {message}"))
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=8))
    span.add_event("exception", {"exception.type": kind, "exception.message": message,
                                 "exception.stacktrace": safe_text(stack)}, timestamp=timestamp)


def error_message(exc: BaseException) -> str:
    """The error's own message (Temporal's errors prefix their type to `str()`; this does not)."""
    message = getattr(exc, "message", None)
    text = message if isinstance(message, str) and message else str(exc)
    return text or type(exc).__name__


def error_type(exc: BaseException) -> str:
    """The error's kind: an ApplicationError's type (the original class name), else the class name."""
    kind = getattr(exc, "type", None)
    if isinstance(kind, str) and kind:
        return kind
    cause = getattr(exc, "cause", None)
    if cause is not None and cause is not exc:
        inner = getattr(cause, "type", None)
        if isinstance(inner, str) and inner:
            return inner
        return type(cause).__name__
    return type(exc).__name__


def find_in_chain(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of type `kind` among `exc`, its causes and contexts."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__ or getattr(current, "cause", None)
    return None


def messages_json(messages: Any) -> str:
    """Chat messages in the GenAI conventions' shape (`[{role, parts: [...]}]`), redacted: text
    parts, `tool_call` parts for the calls an assistant made, `tool_call_response` for results."""
    out = []
    for m in messages or []:
        role = _field(m, "role", "user")
        content = str(_field(m, "content", "") or "")
        if role == "tool":
            parts = [{"type": "tool_call_response", "id": _field(m, "tool_call_id", None),
                      "response": safe_text(content, 20_000)}]
        else:
            parts = ([{"type": "text", "content": safe_text(content, 20_000)}] if content else [])
            parts += tool_call_parts(_field(m, "tool_calls", None))
        out.append({"role": role, "parts": parts})
    return safe_text(json.dumps(out, ensure_ascii=False), 100_000)


def tool_call_parts(calls: Any) -> list[dict[str, Any]]:
    """`tool_call` parts (GenAI conventions) for a model's tool calls, arguments redacted."""
    return [{"type": "tool_call", "id": _field(c, "id", None), "name": _field(c, "name", ""),
             "arguments": _redacted_arguments(_field(c, "arguments", {}))} for c in calls or []]


def _redacted_arguments(arguments: Any) -> Any:
    text = safe_text(json.dumps(arguments, ensure_ascii=False, default=str), 20_000)
    try:
        return json.loads(text)
    except ValueError:  # cut at the size limit: keep it as text
        return text


def _field(obj: Any, name: str, default: Any) -> Any:
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def output_json(text: str, finish_reason: str | None, tool_calls: Any = None) -> str:
    """A model reply in the GenAI conventions' output-message shape (text and tool calls), redacted."""
    parts = ([{"type": "text", "content": safe_text(text, 20_000)}] if text or not tool_calls else [])
    message = {"role": "assistant", "parts": parts + tool_call_parts(tool_calls),
               "finish_reason": finish_reason or "stop"}
    return safe_text(json.dumps([message], ensure_ascii=False), 100_000)


def detach(token: Any) -> None:
    """Undo `opentelemetry.context.attach`, quietly when finalised in another context (an evicted run)."""
    with suppress(ValueError, RuntimeError, AttributeError):
        token.var.reset(token)
