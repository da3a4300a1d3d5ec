"""`chat`, `structured`, `classify`, `extract`: model calls from workflow code.

Runs inside workflows (each call to a model is a durable step, scheduled from here) and
anywhere else (the step then runs directly). Validation, repair and fallback happen
here, in workflow code, so each re-ask is its own step in the run's history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError, create_model

from tether import _runtime, budget
from tether import settings as tether_settings
from tether._sensitive import check_egress
from tether.budget import Ledger
from tether.durations import Duration, parse_duration
from tether.errors import (
    ConfigError,
    EgressBlocked,
    ModelError,
    ModelOutputInvalid,
    StepFailed,
    UsageError,
)
from tether.llm._json import json_text
from tether.llm._limits import routed
from tether.llm._spec import parse_model
from tether.llm._step import call_model
from tether.llm._substitute import for_run, substituted
from tether.llm._types import ChatResult, Message, ModelCall, ModelReply, RunUsage
from tether.step import RetryPolicy, StepOptions

T = TypeVar("T")

Prompt = str | Sequence[Message | dict[str, str]]
"""A prompt: the user's text, or a whole conversation as messages."""

DEFAULT_MODEL = "local:smollm2"
"""The model used when none is given, configured or set in `TETHER_MODEL`: offline, in-process."""

_RUN_KEY = "tether.llm"


@dataclass
class _Settings:
    model: str | None = None
    timeout: timedelta | None = None
    heartbeat: timedelta | None = None
    attempts: RetryPolicy | None = None


@dataclass
class _RunState:
    settings: _Settings
    usage: RunUsage


_process = _RunState(_Settings(), RunUsage())


def _state() -> _RunState:
    rt = _runtime.current()
    if not rt.in_workflow():
        return _process
    store = rt.run_state()
    if _RUN_KEY not in store:
        store[_RUN_KEY] = _RunState(replace(_process.settings), RunUsage())
    return store[_RUN_KEY]  # type: ignore[no-any-return]


def configure(model: str | None = None, *, timeout: Duration | None = None,
              heartbeat: Duration | None = None, attempts: int | RetryPolicy | None = None) -> None:
    """Set the default model and step settings for model calls.

    Called inside a workflow, it applies to the rest of that run; called anywhere else
    (e.g. at the top of your app module), to every call in this process that does not
    say otherwise.

    Args:
        model: Model used by calls that name none (default: `TETHER_MODEL`, else "local:smollm2").
        timeout: Limit on one attempt of a model call (default "5m").
        heartbeat: A call whose worker stops heartbeating for this long is retried
            elsewhere (default "30s"; at least "1s").
        attempts: Attempts in all per call for provider faults (429, 5xx, timeouts), an int or a
            `RetryPolicy` (default 5 attempts, backoff from 1s, honouring `Retry-After`).

    Example:
        >>> llm.configure("mistral:mistral-small-latest", timeout="2m")
    """
    s = _state().settings
    if model is not None:
        parse_model(model)
        s.model = model
    if timeout is not None:
        s.timeout = _positive(timeout, "timeout")
    if heartbeat is not None:
        s.heartbeat = _positive(heartbeat, "heartbeat")
        if s.heartbeat < timedelta(seconds=1):
            raise UsageError("heartbeat: use at least '1s' (model calls heartbeat four times per heartbeat timeout)")
    if attempts is not None:
        if isinstance(attempts, bool) or not isinstance(attempts, int | RetryPolicy):
            raise UsageError(f"attempts: expected an int or a RetryPolicy, got {attempts!r}")
        s.attempts = attempts if isinstance(attempts, RetryPolicy) else replace(
            call_model.options.retry, max_attempts=attempts)


def _positive(value: Duration, what: str) -> timedelta:
    d = parse_duration(value, what=what)
    if d <= timedelta(0):
        raise UsageError(f"{what} must be positive, e.g. '30s'")
    return d


def default_model() -> str:
    """The model calls use when they name none (see `configure`)."""
    return _state().settings.model or _process.settings.model or tether_settings.current().model \
        or DEFAULT_MODEL


def usage() -> RunUsage:
    """Calls, tokens and cost so far: of this run inside a workflow, else of this process."""
    return _state().usage.model_copy(deep=True)


def _options() -> StepOptions:
    s, base = _state().settings, call_model.options
    return replace(base, timeout=s.timeout or base.timeout, heartbeat=s.heartbeat or base.heartbeat,
                   retry=s.attempts or base.retry)


async def ask(call: ModelCall, *, agent_budget: Ledger | None = None) -> ModelReply:
    """Run one model call as a durable step (directly outside workflows) and count its usage.

    The run's budget (and an agent's, `agent_budget`) is checked first: a call that would go
    over it is not made.

    Raises:
        BudgetExceeded: The run's or the agent's budget is spent (and nobody raised it).
        ModelError: The provider failed for good (after the step's retries).
        ConfigError / UsageError: The model cannot be used here (no key, no extra, …).
    """
    rt = _runtime.current()
    overrides = rt.run_models()  # this run's configuration (an evaluation's `--models`) comes first
    answering = substituted(for_run(call, overrides) if overrides else call.model)
    if answering != call.model:  # the run's configuration or a test gave this call to another model
        call = call.model_copy(update={"model": answering})
    await budget.before_model_call(agent_budget)
    if rt.in_workflow():
        check_egress(call.model_dump(), destination=call.model)  # a blocked prompt is never scheduled
        try:
            reply: ModelReply = await rt.execute_step(call_model, [call], {},
                                                      options=routed(_options(), call.model))
        except StepFailed as failed:
            raise _reraise(failed, call.model) from None
    else:
        reply = await call_model(call)
    _state().usage.add(reply)
    budget.after_model_call(reply.cost, reply.usage.input_tokens + reply.usage.output_tokens, agent_budget)
    return reply


def _reraise(failed: StepFailed, model: str) -> Exception:
    """The error a workflow author expects, from the step failure that crossed the activity boundary."""
    original = failed.error
    if isinstance(original, EgressBlocked | ConfigError | UsageError):
        return original  # a policy block or a setup problem: never a reason to try the fallbacks
    if isinstance(original, ModelError):
        detail = str(original)
    else:  # e.g. the attempt timed out or its worker was lost every time
        detail = f"{model}: {failed.error_type or 'error'}: {failed.error_message}"
    suffix = f" ({failed.reason})" if failed.reason in ("retries exhausted", "timed out") else ""
    return ModelError(detail + suffix, model=model, retryable=False,
                      status=original.status if isinstance(original, ModelError) else None)


def _messages(prompt: Prompt, system: str | None) -> list[Message]:
    if isinstance(prompt, str):
        msgs = [Message(role="user", content=prompt)]
    elif isinstance(prompt, Sequence):
        msgs = [m if isinstance(m, Message) else Message.model_validate(m) for m in prompt]
    else:
        raise UsageError(f"prompt: expected text or a list of messages, got {type(prompt).__name__}")
    if not msgs:
        raise UsageError("prompt: the conversation is empty")
    return ([Message(role="system", content=system)] if system else []) + msgs


def _models(model: str | None, fallbacks: Sequence[str]) -> list[str]:
    if isinstance(fallbacks, str):
        raise UsageError("fallbacks: expected a list of model strings, e.g. fallbacks=['local:smollm2']")
    models = [model or default_model(), *fallbacks]
    for m in models:
        parse_model(m)
    return models


async def chat(prompt: Prompt, *, model: str | None = None, system: str | None = None,
               temperature: float | None = None, max_tokens: int | None = None,
               fallbacks: Sequence[str] = ()) -> ChatResult:
    """Ask a model for text. Each call is a durable step (retried on 429/5xx/timeouts).

    Args:
        prompt: The user's text, or a conversation (`Message`s or {"role", "content"} dicts).
        model: `provider:model`, e.g. "mistral:mistral-small-latest" (default: `default_model()`).
        system: A system prompt.
        temperature: Sampling temperature.
        max_tokens: Limit on the reply's length.
        fallbacks: Models to try in order if the model fails for good.

    Returns:
        The reply's text with the model that gave it, its tokens and cost.

    Example:
        >>> reply = await llm.chat("Summarise: ...", model="local:smollm2", max_tokens=60)
        >>> reply.text
    """
    messages = _messages(prompt, system)
    failures: list[ModelError] = []
    for i, m in enumerate(_models(model, fallbacks)):
        call = ModelCall(model=m, messages=messages, temperature=temperature, max_tokens=max_tokens,
                         fallback=i, reason=f"failed: {failures[-1]}" if failures else None)
        try:
            reply = await ask(call)
        except ModelError as exc:
            failures.append(exc)
            continue
        return ChatResult(text=reply.text, model=m, usage=reply.usage, cost=reply.cost)
    raise _all_failed(failures)


def _all_failed(failures: list[ModelError]) -> ModelError:
    if len(failures) == 1:
        return failures[0]
    return ModelError(f"all {len(failures)} models failed: " + "; ".join(map(str, failures)),
                      model=failures[-1].model, retryable=False)


async def structured(output_type: type[T], prompt: Prompt, *, model: str | None = None,
                     fallbacks: Sequence[str] = (), repairs: int = 2, system: str | None = None,
                     temperature: float | None = None, max_tokens: int | None = None) -> T:
    """Ask a model for output of `output_type` and return it validated.

    The model gets the JSON schema (as native structured output where the provider has
    it; llama.cpp constrains local models to it). A reply that is not valid JSON or
    fails validation is sent back with the errors, up to `repairs` times; then each
    fallback model is tried the same way. Every ask is its own durable step.

    Args:
        output_type: A pydantic model (or dataclass / TypedDict) describing the output.
        prompt: The user's text, or a conversation.
        model: `provider:model` (default: `default_model()`).
        fallbacks: Models to try in order when the model's output stays invalid or it fails.
        repairs: Re-asks of the same model after an invalid reply.
        system: Extra instructions, placed before the schema instructions.
        temperature: Sampling temperature.
        max_tokens: Limit on each reply's length.

    Raises:
        ModelOutputInvalid: No model produced valid output; carries the last raw reply and
            its validation errors (e.g. to hand the case to a person).
        ModelError: Every model failed without producing any output.

    Example:
        >>> inv = await llm.structured(Invoice, text, model="local:smollm2",
        ...                            fallbacks=["mistral:mistral-large-latest"])
    """
    return await _structured(output_type, prompt, model=model, fallbacks=fallbacks, repairs=repairs,
                             system=system, temperature=temperature, max_tokens=max_tokens,
                             purpose="structured")


async def _structured(output_type: type[T], prompt: Prompt, *, model: str | None, fallbacks: Sequence[str],
                      repairs: int, system: str | None, temperature: float | None, max_tokens: int | None,
                      purpose: Literal["structured", "classify", "extract"]) -> T:
    if isinstance(repairs, bool) or not isinstance(repairs, int) or repairs < 0:
        raise UsageError(f"repairs must be an int >= 0, got {repairs!r}")
    adapter, schema, name = _output(output_type)
    base = _messages(prompt, _schema_instructions(system, schema))
    failures: list[ModelError] = []
    last: tuple[str, str, list[str]] | None = None
    why: str | None = None
    for fi, m in enumerate(_models(model, fallbacks)):
        convo = list(base)
        for r in range(repairs + 1):
            call = ModelCall(model=m, messages=convo, temperature=temperature, max_tokens=max_tokens,
                             output_schema=schema, output_name=name, purpose=purpose,
                             repair=r, fallback=fi, reason=why)
            try:
                reply = await ask(call)
            except ModelError as exc:
                failures.append(exc)
                why = f"failed: {exc}"
                break
            try:
                return adapter.validate_json(json_text(reply.text))  # type: ignore[no-any-return]
            except ValidationError as exc:
                last = (m, reply.text, error_lines(exc))
                why = f"invalid reply from {m}: {last[2][0]}"
                convo = [*convo, Message(role="assistant", content=reply.text),
                         Message(role="user", content=_repair_prompt(last[2]))]
    raise _invalid(name, last, failures, _models(model, fallbacks))


def _invalid(name: str, last: tuple[str, str, list[str]] | None, failures: list[ModelError],
             tried: list[str]) -> ModelError:
    if last is None:
        return _all_failed(failures)
    model, raw, errors = last
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ModelOutputInvalid(
        f"no valid {name} from {', '.join(tried)}: the last reply of {model} failed validation: "
        f"{errors[0]}{more}", model=model, raw=raw, errors=errors, tried=tried)


def _output(output_type: Any) -> tuple[TypeAdapter[Any], dict[str, Any], str]:
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(output_type)
        schema = adapter.json_schema()
    except Exception as exc:
        raise UsageError(f"output type {output_type!r} has no JSON schema: {exc}") from None
    if schema.get("type") != "object":
        raise UsageError(f"output type {output_type!r} must be an object (a pydantic model, "
                         "dataclass or TypedDict); wrap lists or scalars in a model")
    return adapter, schema, getattr(output_type, "__name__", "Output")


def _schema_instructions(system: str | None, schema: dict[str, Any]) -> str:
    import json

    rules = ("Reply with one JSON object that matches this JSON schema, and nothing else "
             f"(no prose, no code fences):\n{json.dumps(schema, separators=(',', ':'))}")
    return f"{system}\n\n{rules}" if system else rules


def _repair_prompt(errors: list[str]) -> str:
    listed = "\n".join(f"- {e}" for e in errors[:10])
    return (f"Your reply is not valid:\n{listed}\nReply again with only the corrected JSON object "
            "matching the schema.")


def error_lines(exc: ValidationError) -> list[str]:
    """Validation errors as short lines: `field.path: message`."""
    lines = []
    for e in exc.errors(include_url=False):
        where = ".".join(str(p) for p in e["loc"])
        lines.append(f"{where}: {e['msg']}" if where else e["msg"])
    return lines


async def classify(text: str, *, labels: Sequence[str], model: str | None = None,
                   instructions: str | None = None, fallbacks: Sequence[str] = (),
                   repairs: int = 2) -> str:
    """Put `text` in one of `labels` and return the label (a thin layer over `structured`).

    Example:
        >>> kind = await llm.classify(email, labels=["invoice", "complaint", "other"])
    """
    names = list(labels)
    if not names or not all(isinstance(x, str) and x for x in names) or len(set(names)) != len(names):
        raise UsageError(f"labels must be distinct non-empty strings, got {labels!r}")
    choice: Any = Literal.__getitem__(tuple(names))
    model_type = create_model("Classification", label=(choice, ...))
    prompt = f"{instructions}\n\n{text}" if instructions else text
    system = "Classify the text into exactly one of these labels: " + ", ".join(names) + "."
    out: BaseModel = await _structured(model_type, prompt, model=model, system=system, fallbacks=fallbacks,
                                       repairs=repairs, temperature=0.0, max_tokens=None, purpose="classify")
    return str(out.label)  # type: ignore[attr-defined]


async def extract(output_type: type[T], text: str, *, model: str | None = None,
                  instructions: str | None = None, fallbacks: Sequence[str] = (),
                  repairs: int = 2) -> T:
    """Extract an `output_type` from a document's text (a thin layer over `structured`).

    Example:
        >>> fields = await llm.extract(InvoiceFields, invoice_text, model="local:smollm2")
    """
    system = instructions or "Extract the fields from the document. Use only facts stated in it."
    return await _structured(output_type, text, model=model, system=system, fallbacks=fallbacks,
                             repairs=repairs, temperature=0.0, max_tokens=None, purpose="extract")
