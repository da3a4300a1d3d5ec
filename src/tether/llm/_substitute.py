"""Model substitution for tests: calls to some models answered by others.

Runs wherever model calls are made (workflow code, on workers). Workflow modules are
re-imported by Temporal's sandbox for every run, so patching a module's model constant in a
test changes nothing; substitutes live here, in tether (passed through the sandbox), and in
`TETHER_MODEL_SUBSTITUTES` for worker processes.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Iterator, Mapping

from tether import settings
from tether.errors import UsageError

_active: list[dict[str, str]] = []


@contextlib.contextmanager
def substitute(mapping: Mapping[str, str]) -> Iterator[None]:
    """Answer calls to some models with other models while the block runs (for tests).

    Keys are model strings or patterns (`"mistral:*"`, `"*"`); values are the models that
    answer instead, e.g. a `ScriptedModel`'s `.model` or a loopback `ChatServer.model()`.
    Runs record the model that answered. Worker processes read the same mapping as JSON
    from `TETHER_MODEL_SUBSTITUTES`.

    Example:
        >>> with llm.substitute({"mistral:*": fake.model}):
        ...     result = await client.run(process_invoice, invoice)
    """
    checked = {str(k): _check(k, v) for k, v in mapping.items()}
    _active.append(checked)
    try:
        yield
    finally:
        _active.remove(checked)


def _check(pattern: str, model: str) -> str:
    if not isinstance(model, str) or ":" not in model:
        raise UsageError(f"substitute {pattern!r}: expected a model string such as 'scripted:fake', got {model!r}")
    return model


def substituted(model: str) -> str:
    """The model that answers calls to `model` (itself unless a substitute matches)."""
    for table in [*reversed(_active), _from_env()]:
        for pattern, other in table.items():
            if fnmatch.fnmatchcase(model, pattern):
                return other
    return model


def _from_env() -> dict[str, str]:
    return dict(settings.current().model_substitutes)
