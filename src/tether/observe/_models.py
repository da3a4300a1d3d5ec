"""The GenAI span of one model call: request, reply, tokens, cost, repair round, fallback position.

Runs wherever a model is asked (`tether.llm`'s model step, in a step attempt on a worker or
directly in a script). Follows the OpenTelemetry GenAI semantic conventions; prompts and
replies are recorded only when content capture is on, with sensitive values withheld.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from tether import _runtime
from tether.errors import EgressBlocked
from tether.observe import _metrics, _setup
from tether.observe import _spans as S
from tether.observe._run import egress_span

R = TypeVar("R")


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def model_request(call: Any, *, content: bool) -> dict[str, Any]:
    """GenAI request attributes (and tether's repair/fallback position) of a `ModelCall`."""
    model = str(_get(call, "model", "") or "")
    provider, _, name = model.partition(":")
    attrs: dict[str, Any] = {S.GENAI_OPERATION: "chat", S.GENAI_PROVIDER: S.provider_name(provider),
                             S.GENAI_REQUEST_MODEL: name or model, "tether.llm.model": model,
                             S.LLM_REPAIR: int(_get(call, "repair", 0) or 0),
                             S.LLM_FALLBACK: int(_get(call, "fallback", 0) or 0),
                             S.LLM_PURPOSE: str(_get(call, "purpose", "chat") or "chat"),
                             S.GENAI_OUTPUT_TYPE: "json" if _get(call, "output_schema") else "text"}
    if _get(call, "output_name"):
        attrs[S.LLM_OUTPUT_NAME] = str(_get(call, "output_name"))
    if _get(call, "reason"):
        attrs[S.LLM_REASON] = S.safe_text(str(_get(call, "reason")), 500)
    for key, attr in (("temperature", S.GENAI_TEMPERATURE), ("max_tokens", S.GENAI_MAX_TOKENS)):
        if _get(call, key) is not None:
            attrs[attr] = _get(call, key)
    if content:
        attrs[S.GENAI_INPUT_MESSAGES] = S.messages_json(_get(call, "messages"))
    return attrs


class ModelSpan:
    """Handed out by `model_call`: give it the reply so the span carries tokens, cost and output."""

    def __init__(self, span: Span, attrs: dict[str, Any]) -> None:
        self.span = span
        self.attrs = attrs
        self.reply_value: Any = None

    def reply(self, reply: Any) -> None:
        """Record the model's reply (a `ModelReply`)."""
        self.reply_value = reply


@contextmanager
def model_call(call: Any) -> Iterator[ModelSpan]:
    """Trace one model call (a `ModelCall`) as a GenAI `chat <model>` span and count its metrics.

    Example:
        >>> with model_call(call) as span:
        ...     reply = await provider(call)
        ...     span.reply(reply)
    """
    traced = trace.get_current_span().is_recording() or _setup.has_span_sink()
    attrs = model_request(call, content=traced and _setup.capture_content())
    attrs.update(_run_attrs())
    span = (_setup.tracer().start_span(f"chat {attrs[S.GENAI_REQUEST_MODEL]}", kind=SpanKind.CLIENT,
                                       attributes=attrs) if traced else trace.INVALID_SPAN)
    recorder = ModelSpan(span, attrs)
    started = time.perf_counter()
    with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
        try:
            yield recorder
        except BaseException as exc:
            _failed(recorder, exc, time.perf_counter() - started)
            raise
    _succeeded(recorder, time.perf_counter() - started)


def _run_attrs() -> dict[str, Any]:
    attempt = _runtime.current().attempt()
    if attempt is not None:
        return {S.RUN_ID: attempt.run_id, S.WORKFLOW: attempt.workflow}
    return {}


def _failed(rec: ModelSpan, exc: BaseException, seconds: float) -> None:
    kind = S.error_type(exc)
    if rec.span.is_recording():
        S.record_error(rec.span, exc)
        blocked = S.find_in_chain(exc, EgressBlocked)
        if blocked is not None:
            egress_span(blocked)
        rec.span.end()
    _metrics.model_call(_metric_attrs(rec.attrs, kind), seconds, 0, 0, None)


def _succeeded(rec: ModelSpan, seconds: float) -> None:
    reply = rec.reply_value
    usage = _get(reply, "usage") or {}
    tokens_in = int(_get(usage, "input_tokens", 0) or 0)
    tokens_out = int(_get(usage, "output_tokens", 0) or 0)
    cost = _get(reply, "cost")
    finish = _get(reply, "finish_reason")
    out: dict[str, Any] = {S.GENAI_RESPONSE_MODEL: str(_get(reply, "response_model")
                                                       or rec.attrs[S.GENAI_REQUEST_MODEL]),
                           S.GENAI_INPUT_TOKENS: tokens_in, S.GENAI_OUTPUT_TOKENS: tokens_out}
    if finish:
        out[S.GENAI_FINISH_REASONS] = [str(finish)]
    if cost is not None:
        out[S.LLM_COST] = float(cost)
    if rec.span.is_recording():
        if S.GENAI_INPUT_MESSAGES in rec.attrs:  # content capture is on
            out[S.GENAI_OUTPUT_MESSAGES] = S.output_json(str(_get(reply, "text", "") or ""), finish,
                                                         _get(reply, "tool_calls"))
        rec.span.set_attributes(out)
        rec.span.set_status(Status(StatusCode.OK))
        rec.span.end()
    _metrics.model_call(_metric_attrs({**rec.attrs, **out}, None), seconds, tokens_in, tokens_out,
                        float(cost) if cost is not None else None)


def _metric_attrs(attrs: Mapping[str, Any], error: str | None) -> dict[str, Any]:
    keep = (S.GENAI_OPERATION, S.GENAI_PROVIDER, S.GENAI_REQUEST_MODEL, S.GENAI_RESPONSE_MODEL)
    out = {k: attrs[k] for k in keep if k in attrs}
    if error:
        out[S.ERROR_TYPE] = error
    return out


def traced_model_call(fn: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """Decorate an async function `(call: ModelCall, ...) -> ModelReply` so each call is a GenAI span.

    Keeps the function's name, signature and type hints (it can sit under `@step`).
    """

    @functools.wraps(fn)
    async def traced(call: Any, *args: Any, **kwargs: Any) -> R:
        with model_call(call) as recorder:
            reply = await fn(call, *args, **kwargs)
            recorder.reply(reply)
        return reply

    return traced
