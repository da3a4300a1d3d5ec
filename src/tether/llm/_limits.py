"""`rate_limit`: model calls limited per model or pattern across every worker; routing a call to its key.

Declared at import time of the app module (workers and workflow code both import it); read in
workflow code, where each model call is sent to the task queue of its model's key.
"""

from __future__ import annotations

from dataclasses import replace

from tether import limits
from tether.errors import UsageError
from tether.limits import RateLimit
from tether.llm._spec import CLOUD, endpoints, parse_model
from tether.step import StepOptions


def rate_limit(model: str, *, requests_per_second: float | None = None,
               max_concurrent: int | None = None) -> RateLimit:
    """Limit the calls to `model` of every worker of this deployment together.

    Declare it at the top of the app module, beside the workflows, so that workflow code and
    workers both know it. A call obeys its model's own limit, else the longest pattern that
    matches it; a limit per pattern is shared by all its models (one quota for `"openai:*"`).
    A provider's 429 with Retry-After pauses the whole key for every worker until it ends.

    Args:
        model: A model string ("openai:gpt-4.1") or a pattern ("openai:*", "mistral:mistral-*").
        requests_per_second: Calls started per second, all workers together.
        max_concurrent: Calls in flight at once, per worker.

    Raises:
        UsageError: A malformed model or pattern, a rate that is not positive, or the same
            key declared before with other values.

    Example:
        >>> llm.rate_limit("openai:gpt-4.1", requests_per_second=5, max_concurrent=20)
    """
    limit = RateLimit(per_second=requests_per_second, max_concurrent=max_concurrent, key=_pattern(model))
    return limits.declare(limit, models=True)


def _pattern(model: object) -> str:
    if not isinstance(model, str) or not limits.is_pattern(model):
        parse_model(model)  # a plain model string: its own errors say what is wrong
        return limits.check_key(model)
    if model == "*":
        return model
    provider, sep, name = model.partition(":")
    known = [*CLOUD, "openai-compatible", *endpoints, "local", "scripted"]
    if not sep or not name or not provider or (not limits.is_pattern(provider) and provider not in known):
        raise UsageError(f"rate limit pattern {model!r}: write 'provider:model' with wildcards, "
                         f"e.g. 'openai:*' (providers: {', '.join(known)})")
    return limits.check_key(model)


def routed(options: StepOptions, model: str) -> StepOptions:
    """`options` for a call to `model`: sent to its rate limit's queue when one applies."""
    limit = limits.for_model(model)
    return options if limit is None else replace(options, limit=limit.key)
