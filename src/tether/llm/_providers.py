"""Cloud and OpenAI-compatible models through pydantic-ai's model layer.

Runs on workers. tether asks pydantic-ai for exactly one HTTP attempt per step attempt
(`max_retries=0`), so every retry is a Temporal attempt that `tether show` can list, and
turns provider errors into `ModelError`s that say whether a retry can help.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import json
import os
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from tether import limits
from tether.errors import ConfigError, ModelError
from tether.llm._live import LiveText
from tether.llm._spec import ModelSpec
from tether.llm._types import Message, ModelCall, ModelReply, ToolCall, Usage
from tether.workflow import idempotency_key

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}

# pydantic-ai models and their HTTP connection pools belong to one event loop.
_models: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str | None, ...], Any]] = \
    weakref.WeakKeyDictionary()
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str | None], Any]] = \
    weakref.WeakKeyDictionary()

POOL_CONNECTIONS = 1000
"""Connections one worker keeps open to one provider endpoint, all of them kept alive when idle: a
worker running hundreds of calls at once reuses its connections instead of closing and reopening
the ones above the SDKs' default 100 idle after every burst."""


def _model(spec: ModelSpec) -> Any:
    per_loop = _models.setdefault(asyncio.get_running_loop(), {})
    # a changed key or base URL (e.g. rotated in the environment) gets a new client
    key = (spec.text, spec.base_url, os.environ.get(spec.key_env) if spec.key_env else None)
    if key not in per_loop:
        per_loop[key] = _build(spec)
    return per_loop[key]


def _pool(spec: ModelSpec) -> Any:
    """The HTTP client (connection pool) shared by every model of one provider endpoint on this loop."""
    import httpx2
    from pydantic_ai._http import create_async_httpx2_client

    per_loop = _pools.setdefault(asyncio.get_running_loop(), {})
    key = (spec.provider, spec.base_url)
    if key not in per_loop:
        pool = per_loop[key] = create_async_httpx2_client(limits=httpx2.Limits(
            max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS))
        pool.event_hooks = {"request": [_traced], "response": [_answered]}
    return per_loop[key]


# A rate-limited key's call tells its worker's pacer when its request was written and when the
# answer began: the call's place in the provider's second is then known, instead of assumed to
# last up to half a second after the call went, plus its whole answer time (see engine/limits.py).
async def _traced(request: Any) -> None:
    if limits.marked():
        request.extensions["trace"] = _trace


async def _trace(event: str, info: dict[str, Any]) -> None:
    if event.endswith("send_request_body.complete"):
        limits.sent()


async def _answered(response: Any) -> None:
    limits.answered()


def _build(spec: ModelSpec) -> Any:
    try:
        return _build_model(spec, _pool(spec))
    except ImportError as exc:
        raise ConfigError(f"{spec.text!r} needs pydantic-ai's {spec.provider} support, which is not "
                          f"installed ({exc.name}): pip install 'pydantic-ai-slim[{spec.provider}]'") from None


_MODULES = {"mistral": ("pydantic_ai.models.mistral", "pydantic_ai.providers.mistral"),
            "anthropic": ("pydantic_ai.models.anthropic", "pydantic_ai.providers.anthropic")}
_OPENAI = ("pydantic_ai.models.openai", "pydantic_ai.providers.openai")
_COMMON = ("pydantic_ai.messages", "pydantic_ai.direct", "pydantic_ai.exceptions", "pydantic_ai.models",
           "pydantic_ai.output", "pydantic_ai.tools", "pydantic_ai._http")


_loading: concurrent.futures.Future[None] | None = None


def preload_soon(providers: Iterable[str]) -> None:
    """Start `preload(providers)` in a background thread and return at once: a worker polls
    meanwhile, and a model call that comes before the imports are done waits for them without
    holding up the event loop (see `ready()`)."""
    global _loading
    future: concurrent.futures.Future[None] = concurrent.futures.Future()
    wanted = list(providers)

    def load() -> None:
        try:
            preload(wanted)
        finally:
            future.set_result(None)

    _loading = future
    threading.Thread(target=load, name="tether-preload", daemon=True).start()


async def ready() -> None:
    """Wait (without blocking the event loop) for a background `preload_soon()` to finish."""
    loading = _loading
    if loading is not None and not loading.done():
        await asyncio.wrap_future(loading)


def preload(providers: Iterable[str]) -> None:
    """Import the client code of `providers` now (seconds of imports), not in the first call:
    a worker does it before it takes calls, so its first calls are not held up together."""
    for provider in set(providers):
        for module in (*_COMMON, *_MODULES.get(provider, _OPENAI)):
            with contextlib.suppress(ImportError):  # a missing extra is reported by the call itself
                importlib.import_module(module)


def _build_model(spec: ModelSpec, pool: Any) -> Any:
    key = os.environ.get(spec.key_env) if spec.key_env else None
    if spec.provider == "mistral":
        from pydantic_ai.models.mistral import MistralModel
        from pydantic_ai.providers.mistral import MistralProvider

        return MistralModel(spec.name, provider=MistralProvider(api_key=key, base_url=spec.base_url,
                                                                http_client=pool))
    if spec.provider == "anthropic":
        from pydantic_ai.models.anthropic import AnthropicModel
        from pydantic_ai.providers.anthropic import AnthropicProvider

        return AnthropicModel(spec.name, provider=AnthropicProvider(api_key=key, base_url=spec.base_url,
                                                                    http_client=pool))
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    # OpenAI itself and every OpenAI-compatible server (vLLM, Ollama, LM Studio, llama.cpp)
    client = _openai_client()(base_url=spec.base_url, api_key=key or "not-needed", http_client=pool)
    return OpenAIChatModel(spec.name, provider=OpenAIProvider(openai_client=client))


_OpenAI: Any = None


def _openai_client() -> Any:
    """The OpenAI SDK's client class, building its replies with pydantic's compiled validator.

    The SDK builds each reply object with `construct_type`, in Python, without validation:
    measured here, ~0.4 ms for a chat completion and ~0.5-0.9 ms for each streamed chunk, where
    `model_validate` builds an equal object in ~12-35 us. A streamed reply is a chunk per token,
    so that was most of a streaming step's CPU. Data the validator rejects (a server that
    strays from the schema) is built as before, so nothing that worked stops working.
    """
    global _OpenAI
    if _OpenAI is not None:
        return _OpenAI
    import pydantic
    from openai import AsyncOpenAI

    if not hasattr(AsyncOpenAI, "_process_response_data"):  # another SDK version: as it comes
        _OpenAI = AsyncOpenAI
        return _OpenAI

    class FastOpenAI(AsyncOpenAI):
        def _process_response_data(self, *, data: object, cast_to: Any, response: Any) -> Any:
            # models the SDK builds its own way (`ModelBuilderProtocol`: a `build` class method) keep it
            if isinstance(data, dict) and isinstance(cast_to, type) and issubclass(cast_to, pydantic.BaseModel) \
                    and not hasattr(cast_to, "build"):
                with contextlib.suppress(pydantic.ValidationError):
                    return cast_to.model_validate(data)
            return super()._process_response_data(data=data, cast_to=cast_to, response=response)

    _OpenAI = FastOpenAI
    return _OpenAI


def _messages(call: ModelCall) -> list[Any]:
    """The conversation in pydantic-ai's message types."""
    from pydantic_ai.messages import ModelRequest, ModelResponse, SystemPromptPart, TextPart, UserPromptPart

    out: list[Any] = []
    pending: list[Any] = []
    for m in call.messages:
        if m.role == "assistant":
            if pending:
                out.append(ModelRequest(parts=pending))
                pending = []
            text = [TextPart(m.content)] if m.content or not m.tool_calls else []
            out.append(ModelResponse(parts=[*text, *_tool_call_parts(m)]))
        elif m.role == "tool":
            pending.append(_tool_return_part(m))
        else:
            pending.append(SystemPromptPart(m.content) if m.role == "system" else UserPromptPart(m.content))
    if pending:
        out.append(ModelRequest(parts=pending))
    return out


def _tool_call_parts(m: Message) -> list[Any]:
    from pydantic_ai.messages import ToolCallPart

    return [ToolCallPart(c.name, c.arguments, tool_call_id=c.id) for c in m.tool_calls or []]


def _tool_return_part(m: Message) -> Any:
    from pydantic_ai.messages import ToolReturnPart

    return ToolReturnPart(m.name or "tool", m.content, tool_call_id=m.tool_call_id or "")


FINAL_TOOL = "final_result"
"""With tools and an output schema, the model gives its final answer by calling this tool."""


def _tool_calls(resp: Any) -> tuple[list[ToolCall], str | None]:
    """The reply's tool calls, and its final answer as JSON when it came through `FINAL_TOOL`."""
    from pydantic_ai.messages import ToolCallPart

    calls = [ToolCall(id=p.tool_call_id, name=p.tool_name, arguments=p.args_as_dict())
             for p in resp.parts if isinstance(p, ToolCallPart)]
    final = [c for c in calls if c.name == FINAL_TOOL]
    if final and len(final) == len(calls):
        return [], json.dumps(final[0].arguments, ensure_ascii=False)
    return [c for c in calls if c.name != FINAL_TOOL], None


def _parameters(call: ModelCall, model: Any) -> Any:
    from pydantic_ai.models import ModelRequestParameters
    from pydantic_ai.output import OutputObjectDefinition
    from pydantic_ai.tools import ToolDefinition

    if call.tools:  # agents: tools natively; a structured final answer is a call of FINAL_TOOL
        tools = [ToolDefinition(name=t.name, description=t.description, parameters_json_schema=t.parameters)
                 for t in call.tools]
        if call.output_schema is None:
            return ModelRequestParameters(function_tools=tools)
        final = ToolDefinition(name=FINAL_TOOL, description="Give the final answer.",
                               parameters_json_schema=call.output_schema)
        return ModelRequestParameters(function_tools=tools, output_mode="tool", output_tools=[final],
                                      allow_text_output=False)
    if call.output_schema is None or not _supports_native_output(model):
        return ModelRequestParameters()  # the schema is in the system prompt either way
    return ModelRequestParameters(
        output_mode="native",
        output_object=OutputObjectDefinition(json_schema=call.output_schema, name=call.output_name))


def _supports_native_output(model: Any) -> bool:
    profile = model.profile
    value = profile.get("supports_json_schema_output") if isinstance(profile, dict) else \
        getattr(profile, "supports_json_schema_output", False)
    return bool(value)


_IDEMPOTENT_PROVIDERS = {"openai", "openai-compatible", "anthropic", "ollama"}
"""Providers whose APIs accept an `Idempotency-Key` header (OpenAI-style and Anthropic)."""


def _settings(call: ModelCall, spec: ModelSpec) -> dict[str, Any]:
    settings: dict[str, Any] = {"max_retries": 0}
    if spec.provider in _IDEMPOTENT_PROVIDERS:
        # the same on every attempt of this model step: a retried request is not billed twice
        settings["extra_headers"] = {"Idempotency-Key": idempotency_key()}
    if call.temperature is not None:
        settings["temperature"] = call.temperature
    if call.max_tokens is not None:
        settings["max_tokens"] = call.max_tokens
    return settings


async def complete(call: ModelCall, spec: ModelSpec) -> ModelReply:
    """Send `call` to the provider once; raise `ModelError` (retryable or not) on failure."""
    await ready()  # the worker may still be loading the client code in the background
    from pydantic_ai.direct import model_request
    from pydantic_ai.exceptions import AgentRunError

    model = _model(spec)
    try:
        with LiveText(call.model) as live:
            if live.on:  # someone may watch: stream the reply's text as it comes (the result is the same)
                resp = await _streamed(model, call, spec, live)
            else:
                resp = await model_request(model, _messages(call), model_settings=_settings(call, spec),
                                           model_request_parameters=_parameters(call, model))
    except AgentRunError as exc:
        raise model_error(exc, spec) from None
    tool_calls, final = _tool_calls(resp)
    return ModelReply(
        model=call.model, text=final if final is not None else resp.text or "",
        usage=Usage(input_tokens=resp.usage.input_tokens or 0, output_tokens=resp.usage.output_tokens or 0),
        response_model=resp.model_name, finish_reason=resp.finish_reason, tool_calls=tool_calls,
    )


async def _streamed(model: Any, call: ModelCall, spec: ModelSpec, live: LiveText) -> Any:
    """The provider's streaming API: text and JSON output reach `live` piece by piece."""
    from pydantic_ai.direct import model_request_stream
    from pydantic_ai.messages import PartDeltaEvent, PartStartEvent, TextPart, TextPartDelta

    async with model_request_stream(model, _messages(call), model_settings=_settings(call, spec),
                                    model_request_parameters=_parameters(call, model)) as stream:
        async for event in stream:
            if isinstance(event, PartStartEvent) and isinstance(event.part, TextPart):
                live.add(event.part.content)
            elif isinstance(event, PartDeltaEvent) and isinstance(event.delta, TextPartDelta):
                live.add(event.delta.content_delta)
        live.close()
        return stream.get()


def model_error(exc: BaseException, spec: ModelSpec) -> ModelError:
    """Translate a pydantic-ai error into a `ModelError` with the provider's own message."""
    from pydantic_ai import exceptions as e

    status = getattr(exc, "status_code", None)
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(exc, e.ModelQuotaExceededError | e.ModelRequestRejectedError):
        retryable = False
    elif isinstance(exc, e.ModelRateLimitError | e.ModelServerError | e.ModelUnavailableError
                    | e.ModelConnectionError | e.ModelRequestTimeout):
        retryable = True
    else:
        retryable = status is None or status in _RETRYABLE_STATUS or status >= 500
    what = f"HTTP {status}: " if status else ""
    detail = provider_message(exc)
    hint = "" if retryable else " (not retried)"
    return ModelError(f"{spec.text}: {what}{detail}{hint}", model=spec.text, status=status,
                      retryable=retryable, retry_after=float(retry_after) if retry_after else None)


def provider_message(exc: BaseException) -> str:
    """The provider's error message on one line (from the response body when there is one)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return " ".join(str(message).split())
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())[:500]

