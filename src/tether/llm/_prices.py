"""The price table: USD per million tokens per model, set by users over a bundled default.

Runs on workers (the cost of a call is computed where the call is made and recorded
with its reply). The default comes from `genai-prices`, the price list bundled with
pydantic-ai (no network: it is the snapshot installed with the package).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from tether.errors import UsageError
from tether.llm._spec import ModelSpec, parse_model
from tether.llm._types import Usage

_GENAI_PROVIDERS = {"openai": "openai", "mistral": "mistral", "anthropic": "anthropic"}


@dataclass(frozen=True)
class Price:
    """What a model costs, in USD per million tokens."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        """The cost of `usage` at this price."""
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1_000_000


_overrides: dict[str, Price] = {}


def set_price(model: str, *, input: float, output: float) -> None:
    """Set (or override) a model's price, in USD per million input and output tokens.

    Call it in a module your workers import; costs are computed where calls run.
    `model` is a model string; for OpenAI-compatible servers the `@URL` part may be left out.

    Example:
        >>> set_price("mistral:mistral-large-latest", input=2.0, output=6.0)
    """
    if input < 0 or output < 0:
        raise UsageError(f"price of {model!r}: prices cannot be negative")
    _overrides[parse_model(model).price_key] = Price(float(input), float(output))


def price_of(spec: ModelSpec) -> Price | None:
    """The price of a model: yours if set, else the bundled list; local models are free.

    Returns None when the price is unknown (the call's cost is then reported as unknown).
    """
    if spec.price_key in _overrides:
        return _overrides[spec.price_key]
    if spec.kind == "local":
        return Price(0.0, 0.0)
    provider = _GENAI_PROVIDERS.get(spec.provider)
    return _bundled(provider, spec.name) if provider else None


def cost_of(spec: ModelSpec, usage: Usage) -> float | None:
    """The USD cost of `usage` on this model, or None when its price is unknown."""
    price = price_of(spec)
    return None if price is None else round(price.cost(usage), 10)


@functools.lru_cache(maxsize=256)
def _bundled(provider: str, name: str) -> Price | None:
    try:
        from genai_prices import Usage as GenaiUsage
        from genai_prices import calc_price
    except ImportError:  # pragma: no cover - genai-prices comes with pydantic-ai-slim
        return None
    try:
        calc = calc_price(GenaiUsage(input_tokens=1_000_000, output_tokens=1_000_000), name,
                          provider_id=provider)
    except LookupError:
        return None
    return Price(float(calc.input_price), float(calc.output_price))
