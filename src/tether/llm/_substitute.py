"""Model substitution: calls to some models answered by others, for tests (process-wide) and per run.

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
from tether.llm._types import ModelCall

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


def step_names(call: ModelCall) -> list[str]:
    """The names a model call answers to in a run's model overrides: its purpose (`chat`,
    `structured`, `classify`, `extract`, `agent`) and, for typed output, `purpose.OutputType`.

    Example:
        >>> step_names(ModelCall(model="m:x", messages=[], purpose="extract", output_name="Stated"))
        ['extract', 'extract.Stated']
    """
    names: list[str] = [call.purpose]
    if call.output_name:
        names.append(f"{call.purpose}.{call.output_name}")
    return names


def for_run(call: ModelCall, models: Mapping[str, str]) -> str:
    """The model a run's overrides give `call` (its own model when no key matches).

    A key with a colon is a model pattern, as in `substitute` (`"mistral:*"`): every call to a
    matching model goes to the override. A key without one names a step (see `step_names`;
    patterns allowed): the step's primary model is replaced, its fallbacks stay. The first
    matching key wins, in the order given.
    """
    names = step_names(call)
    for key, model in models.items():
        if ":" in key:
            if fnmatch.fnmatchcase(call.model, key):
                return model
        elif call.fallback == 0 and any(fnmatch.fnmatchcase(n, key) for n in names):
            return model
    return call.model


def check_overrides(models: Mapping[str, str]) -> dict[str, str]:
    """`models` as a plain dict, refusing empty keys and values that are not model strings."""
    checked: dict[str, str] = {}
    for key, model in models.items():
        if not isinstance(key, str) or not key.strip():
            raise UsageError(f"model override {key!r}: name a step (e.g. 'extract') or a model pattern")
        checked[key.strip()] = _check(key, model)
    return checked
