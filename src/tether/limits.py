"""Rate limits shared by every worker of a deployment: what each one allows, declared by key.

Core. Declared when the app module is imported (`@step(rate_limit=RateLimit(...))`,
`tether.llm.rate_limit(...)`), so workflow code and workers read the same table: workflow
code sends a limited call to its key's task queue, and every worker polls that queue at the
key's rate (`tether.engine.limits` enforces them and cools a key after a provider's 429).
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from tether import _runtime
from tether.errors import UsageError

_WILDCARDS = set("*?[")
_MAX_KEY = 200


@dataclass(frozen=True)
class RateLimit:
    """How often, and how many at once, calls sharing a key may run, across every worker.

    Args:
        per_second: Calls started per second for the whole deployment, enforced by the
            engine (Temporal dispatches the key's queue at this rate to every worker
            together; after an idle spell it lets up to one second's worth through at once).
        max_concurrent: Calls of this key running at once on each worker.
        key: What the calls share, e.g. "payments-api" (default for a step: its name).
            Steps, and model calls (`tether.llm.rate_limit`), naming the same key share it.

    Example:
        >>> @tether.step(rate_limit=tether.RateLimit(per_second=10, key="payments-api"))
        ... def charge(payment: Payment) -> str: ...
    """

    per_second: float | None = None
    max_concurrent: int | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if self.per_second is None and self.max_concurrent is None:
            raise UsageError("a rate limit needs per_second= and/or max_concurrent=, "
                             "e.g. RateLimit(per_second=10, key='payments-api')")
        if self.per_second is not None:
            rate = self.per_second
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
                raise UsageError(f"{self._named()}: per_second must be a positive number "
                                 f"(calls per second, e.g. 0.5 or 10), got {rate!r}")
        if self.max_concurrent is not None:
            n = self.max_concurrent
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise UsageError(f"{self._named()}: max_concurrent must be an int of at least 1, got {n!r}")
        if self.key is not None:
            check_key(self.key)

    def _named(self) -> str:
        return f"rate limit {self.key!r}" if self.key else "rate limit"

    def describe(self) -> str:
        """The limit in words, e.g. "5/s, 20 at once per worker"."""
        parts = []
        if self.per_second is not None:
            parts.append(f"{self.per_second:g}/s")
        if self.max_concurrent is not None:
            parts.append(f"{self.max_concurrent} at once per worker")
        return ", ".join(parts)


def check_key(key: object) -> str:
    """`key` if it can name a rate limit (and its task queue).

    Raises:
        UsageError: Empty, too long, or with whitespace or '#'.
    """
    if not isinstance(key, str) or not key.strip():
        raise UsageError(f"rate limit key must be a non-empty string such as 'payments-api', got {key!r}")
    if any(c.isspace() for c in key) or _runtime.LIMIT_SEPARATOR in key or len(key) > _MAX_KEY:
        raise UsageError(f"rate limit key {key!r}: use at most {_MAX_KEY} characters, without spaces "
                         f"or {_runtime.LIMIT_SEPARATOR!r}")
    return key


_declared: dict[str, RateLimit] = {}
_model_keys: list[str] = []


def declare(limit: RateLimit, *, models: bool = False) -> RateLimit:
    """Record `limit` under its key (`models`: the key is a model string or pattern).

    Declaring a key again with the same values is allowed (a module imported twice);
    with other values it is a mistake.

    Raises:
        UsageError: No key, or the key is already declared with other values.
    """
    if limit.key is None:
        raise UsageError("a declared rate limit needs a key, e.g. RateLimit(per_second=10, key='payments-api')")
    if _runtime.engine().in_sandbox():  # the engine's sandbox re-imports app modules for every run
        return limit
    existing = _declared.get(limit.key)
    if existing is not None and existing != limit:
        raise UsageError(f"rate limit {limit.key!r} is declared twice with different values "
                         f"({existing.describe()} and {limit.describe()}); declare it once and share it")
    _declared[limit.key] = limit
    if models and limit.key not in _model_keys:
        _model_keys.append(limit.key)
    return limit


def declared() -> list[RateLimit]:
    """Every declared rate limit, by key."""
    return [_declared[k] for k in sorted(_declared)]


def get(key: str) -> RateLimit | None:
    """The rate limit declared under `key`, if any."""
    return _declared.get(key)


def is_model_key(key: str) -> bool:
    """True if `key` was declared for model calls (`tether.llm.rate_limit`)."""
    return key in _model_keys


def for_model(model: str) -> RateLimit | None:
    """The rate limit model calls to `model` obey: its own key, else the longest matching pattern."""
    if model in _model_keys:
        return _declared[model]
    matching = [k for k in _model_keys if _WILDCARDS & set(k) and fnmatch.fnmatchcase(model, k)]
    return _declared[max(matching, key=len)] if matching else None


def is_pattern(text: str) -> bool:
    """True if `text` has wildcards (`*`, `?`, `[`)."""
    return bool(_WILDCARDS & set(text))


class CallMarks(Protocol):
    """What a worker pacing a key's calls learns from the provider client about the current call."""

    def sent(self) -> None:
        """The request has been written to the provider's connection."""

    def answered(self) -> None:
        """The provider's answer has begun to arrive (so the request reached it before now)."""


_marks: ContextVar[CallMarks | None] = ContextVar("tether_call_marks", default=None)


@contextlib.contextmanager
def marking(marks: CallMarks) -> Iterator[None]:
    """Within the block, `sent()` and `answered()` report to `marks` (a worker's pacer: when the
    request left and when its answer came tell it when the call took its place in the provider's
    second, instead of assuming the worst)."""
    token = _marks.set(marks)
    try:
        yield
    finally:
        _marks.reset(token)


def marked() -> bool:
    """Whether the current call reports to a pacer (provider clients trace their requests only then)."""
    return _marks.get() is not None


def sent() -> None:
    """The current call's request has been written (called by provider clients)."""
    marks = _marks.get()
    if marks is not None:
        marks.sent()


def answered() -> None:
    """The current call's answer has begun to arrive: its status line, before its body is read
    and parsed (called by provider clients)."""
    marks = _marks.get()
    if marks is not None:
        marks.answered()
