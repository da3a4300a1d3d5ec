"""The durable model step: one model call as one Temporal activity (heartbeating, like every step).

The activity runs on workers; workflow code schedules it through `tether.llm` (see
`_calls.py`). Outside a workflow it is called directly.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable

from tether._sensitive import check_egress
from tether.llm import _local, _providers, _tooltext
from tether.llm._cache import cached
from tether.llm._prices import cost_of
from tether.llm._spec import ModelSpec, check_ready, parse_model, scripted
from tether.llm._transcript import continue_stored
from tether.llm._types import ModelCall, ModelReply
from tether.observe._models import traced_model_call
from tether.step import RetryPolicy, step

STEP_NAME = "tether.llm"
"""The activity type of every model call (what `tether show` and Temporal's UI list)."""

DEFAULT_RETRY = RetryPolicy(max_attempts=5, initial_interval="1s", max_interval="1m", backoff=2.0)


@step(name=STEP_NAME, attempts=DEFAULT_RETRY, timeout="5m")  # heartbeats on its own while the model works
async def call_model(call: ModelCall) -> ModelReply:
    """Ask the model named in `call` once and return its reply, tokens and cost.

    Raises:
        ModelError: The provider failed (retryable for 429/5xx/timeouts, not for 4xx).
        ConfigError: A key, extra or model file is missing here (not retryable).
    """
    ask = cached(_ask_once)  # off unless TETHER_MODEL_CACHE is set (development)
    if call.transcript is not None or call.keep_transcript:
        return await continue_stored(call, ask)
    return await ask(call)


@traced_model_call  # a GenAI span per call: model, tokens, cost, repair round, fallback position
async def _ask_once(call: ModelCall) -> ModelReply:
    spec = parse_model(call.model)
    check_ready(spec)
    check_egress(call.model_dump(), destination=call.model)  # also covers calls made inside zone steps
    started = time.monotonic()
    reply = await _answer(call, spec)
    reply.seconds = round(time.monotonic() - started, 4)
    reply.cost = cost_of(spec, reply.usage)
    return reply


def _answer(call: ModelCall, spec: ModelSpec) -> Awaitable[ModelReply]:
    if spec.kind in ("local", "scripted") and _tooltext.wanted(call):
        return _tooltext.complete(call, spec, _plain_answer)  # tool calls as constrained JSON
    return _plain_answer(call, spec)


def _plain_answer(call: ModelCall, spec: ModelSpec) -> Awaitable[ModelReply]:
    if spec.kind == "local":
        return _local.complete(call, spec)
    if spec.kind == "scripted":
        return scripted[spec.name](call)
    return _providers.complete(call, spec)
