"""Events that one part of tether publishes and others subscribe to, so neither imports the other.

The engine publishes what happens in a run (e.g. its human tasks changing); observability
subscribes to turn them into spans and metrics. Subscribers run synchronously, in the
publisher's context (workflow code included), and must be deterministic there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HUMAN_TASKS = "human.tasks"
"""A run's human tasks changed; the argument is the list of all its task records."""

_subscribers: dict[str, list[Callable[..., None]]] = {}


def subscribe(kind: str, handler: Callable[..., None]) -> None:
    """Call `handler(*args)` whenever `kind` is published (once per handler)."""
    handlers = _subscribers.setdefault(kind, [])
    if handler not in handlers:
        handlers.append(handler)


def publish(kind: str, *args: Any) -> None:
    """Tell every subscriber of `kind`."""
    for handler in _subscribers.get(kind, ()):
        handler(*args)
