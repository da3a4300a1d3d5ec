"""tether.llm: model calls as durable steps, with a model per call, validated structured
output, repair and fallback, and usage and cost per run.

Use it in workflow code (each model call becomes a step on a worker, heartbeating while
the model works) or anywhere else (the call then runs directly):

    >>> from tether import llm
    >>> reply = await llm.chat("Say hi", model="local:smollm2")
    >>> invoice = await llm.structured(Invoice, text, model="mistral:mistral-small-latest",
    ...                                fallbacks=["openai:gpt-4.1-mini"], repairs=2)

Model strings are `provider:model`: `mistral:`, `openai:`, `anthropic:` (keys from
`MISTRAL_API_KEY`, `OPENAI_API_KEY`, `ANTHROPIC_API_KEY`), `ollama:`,
`openai-compatible:MODEL@http://host:port/v1` or any name added with
`register_endpoint`, `local:smollm2` / `local:/path/model.gguf` (in-process, offline;
`tether[local]`) and `scripted:NAME` (tests; see `tether.testing.ScriptedModel`).
"""

from tether.llm._calls import (
    DEFAULT_MODEL,
    Prompt,
    chat,
    classify,
    configure,
    default_model,
    extract,
    structured,
    usage,
)
from tether.llm._limits import rate_limit
from tether.llm._prices import Price, price_of, set_price
from tether.llm._spec import ModelSpec, available, first_available, parse_model, register_endpoint, require
from tether.llm._step import STEP_NAME, call_model
from tether.llm._substitute import substitute
from tether.llm._types import ChatResult, Message, ModelCall, ModelReply, ModelUsage, RunUsage, Usage

__all__ = [
    "DEFAULT_MODEL",
    "STEP_NAME",
    "ChatResult",
    "Message",
    "ModelCall",
    "ModelReply",
    "ModelSpec",
    "ModelUsage",
    "Price",
    "Prompt",
    "RunUsage",
    "Usage",
    "available",
    "call_model",
    "chat",
    "classify",
    "configure",
    "default_model",
    "extract",
    "first_available",
    "parse_model",
    "price_of",
    "rate_limit",
    "register_endpoint",
    "require",
    "set_price",
    "structured",
    "substitute",
    "usage",
]
