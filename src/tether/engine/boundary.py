"""The step boundary on workers: handles in arguments resolve, sensitive results are sealed.

Runs on workers, around every step attempt (`durable.step_activity` wraps each step with
`zone_bound`). On the way in, arguments are validated against the step's annotations and
handles of the step's own zone resolve to their values; on the way out, a `Sensitive[...]`
result goes into the vault, a result that carries a revealed value in any form
`tether._forms` knows (escaped, re-cased, without separators, base64, hex, as a dict key…)
is stopped, and an error's whole cause chain is copied with such values cut.
"""

from __future__ import annotations

import contextlib
import inspect
import itertools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python

from tether import _forms
from tether._sensitive import (
    _LABEL,
    KIND,
    MAIN_ZONE,
    Sensitive,
    _attempt,
    current_zone,
    sensitive,
)
from tether.errors import EgressBlocked, TetherError

if TYPE_CHECKING:
    from tether.step import Step


class _Plan:
    """How one step's arguments are validated and its handles resolved (built once)."""

    def __init__(self, step: Step[Any, Any]) -> None:
        params = list(step.signature.parameters.values())
        self.step = step
        self.positional = all(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)
        self.params = params
        self.hints = [step.hints.get(p.name, Any) for p in params]
        self.adapters = [TypeAdapter(h) for h in self.hints] if self.positional else []
        self.seals = _is_handle_type(step.return_type)

    def inputs(self, args: tuple[Any, ...], here: str) -> list[Any]:
        if not self.positional:
            return list(args)
        return [self._input(i, a, here) for i, a in enumerate(args)]

    def _input(self, i: int, value: Any, here: str) -> Any:
        adapter = self.adapters[i] if i < len(self.adapters) else TypeAdapter(Any)
        try:
            out = adapter.validate_python(value)
        except ValidationError:
            if not _has_handle(value):
                raise
            out = adapter.validate_python(self._resolve(value, here))
        if isinstance(out, dict) and out.get("kind") == KIND:
            return Sensitive.model_validate(out)
        return out

    def _resolve(self, value: Any, here: str) -> Any:
        if isinstance(value, dict):
            if value.get("kind") == KIND:
                return Sensitive.model_validate(value).reveal() if value.get("zone") == here else self._refuse(value)
            return {k: self._resolve(v, here) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, here) for v in value]
        return value

    def _refuse(self, handle: dict[str, Any]) -> Any:
        raise EgressBlocked(label=str(handle.get("label")), zone=str(handle.get("zone")),
                            destination=f"step {self.step.name!r} in zone {self.step.options.runs_on or MAIN_ZONE!r}")

    def output(self, result: Any, here: str, attempt: list[tuple[str, str, str]]) -> Any:
        if self.seals and not isinstance(result, Sensitive):
            result = sensitive(result, label=self.step.name if _LABEL.fullmatch(self.step.name) else "value")
        outside = [(t, lbl, z) for t, lbl, z in attempt if z != MAIN_ZONE]
        if outside:
            hit = _forms.find(_forms.texts(to_jsonable_python(result, fallback=str)), outside)
            if hit is not None:
                how = "the value itself" if hit[2] else "a transformed form of the value (case, separators, hex)"
                raise EgressBlocked(label=hit[0], zone=hit[1], destination="workflow code (its result)",
                                    detail=f"step {self.step.name!r} returned {how}; return a handle from "
                                           "tether.sensitive() or a non-sensitive summary")
        return result


def _is_handle_type(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Sensitive)


def _has_handle(value: Any) -> bool:
    if isinstance(value, dict):
        return value.get("kind") == KIND or any(_has_handle(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_handle(v) for v in value)
    return False


def zone_bound(step: Step[Any, Any]) -> Callable[..., Any]:
    """The function a worker runs for `step`: handles in its arguments resolve (in the
    step's zone), a `Sensitive[...]` result is stored in the vault, and a result that
    would carry a revealed value out of its zone raises `EgressBlocked`.

    Temporal decodes the arguments untyped; this wrapper validates them against the
    step's annotations, so a handle can arrive where the plain type is expected.
    """
    plan = _Plan(step)
    fn = step.fn

    if step.is_async:

        async def run_async(*args: Any) -> Any:
            with _attempt_scope() as attempt:
                here = current_zone() or MAIN_ZONE
                result = await fn(*plan.inputs(args, here))
                return plan.output(result, here, attempt)

        return _like(run_async, step, plan)

    def run_sync(*args: Any) -> Any:
        with _attempt_scope() as attempt:
            here = current_zone() or MAIN_ZONE
            return plan.output(fn(*plan.inputs(args, here)), here, attempt)

    return _like(run_sync, step, plan)


@contextlib.contextmanager
def _attempt_scope() -> Iterator[list[tuple[str, str, str]]]:
    found: list[tuple[str, str, str]] = []
    token = _attempt.set(found)
    try:
        yield found
    except Exception as exc:
        withheld = _withheld(exc, found) if found else None
        if withheld is None:
            raise
        raise withheld from withheld.__cause__
    finally:
        _attempt.reset(token)


_WITHHELD: dict[tuple[str, bool], type[TetherError]] = {}
_MAX_CHAIN = 16


def _withheld(exc: Exception, found: list[tuple[str, str, str]]) -> TetherError | None:
    """The error and its whole cause chain with sensitive values cut from every message, or
    None when no link carries one.

    Error messages go to workflow code (outside the zone), to logs and to the Temporal
    server. Each link keeps its class name, so retry rules by type still apply; the copy
    chain is linked by `__cause__` only, so the originals (and their `__context__`) stay here.
    """
    links = _chain(exc)
    texts = [_error_texts(link) for link in links]
    if _forms.find((t for group in texts for t in group), found) is None:
        return None
    copies = [_copy(link, _forms.scrub(str(link), found)) for link in links]
    for outer, inner in itertools.pairwise(copies):
        outer.__cause__ = inner
    return copies[0]


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, its cause, the cause's cause… (or the context where there is no explicit cause)."""
    out: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and len(out) < _MAX_CHAIN and all(link is not o for o in out):
        out.append(link)
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)
    return out


def _error_texts(exc: BaseException) -> list[str]:
    """What an error shows anywhere: its message, its args (repr-escaped in tracebacks) and,
    for a pydantic ValidationError, every `input_value` it quotes."""
    out = [str(exc), repr(exc.args)]
    if isinstance(exc, ValidationError):
        out += list(_forms.texts(to_jsonable_python([e.get("input") for e in exc.errors()], fallback=str)))
    return out


def _copy(exc: BaseException, text: str) -> TetherError:
    retryable = getattr(exc, "retryable", True) is not False
    name = type(exc).__name__
    cls = _WITHHELD.get((name, retryable))
    if cls is None:
        cls = _WITHHELD[(name, retryable)] = type(name, (TetherError,), {"retryable": retryable,
                                                                         "__module__": __name__})
    return cls(text).with_traceback(exc.__traceback__)  # frames and source lines only, no values


def _like(wrapper: Callable[..., Any], step: Step[Any, Any], plan: _Plan) -> Callable[..., Any]:
    """Give `wrapper` the step's name and parameters, with every annotation `Any`."""
    fn = step.fn
    wrapper.__name__ = getattr(fn, "__name__", step.name)
    wrapper.__qualname__ = getattr(fn, "__qualname__", step.name)
    wrapper.__module__ = getattr(fn, "__module__", __name__)
    wrapper.__doc__ = fn.__doc__
    if plan.positional:
        params = [p.replace(annotation=Any) for p in plan.params]
        wrapper.__signature__ = inspect.Signature(params, return_annotation=Any)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: Any for p in params} | {"return": Any}
    else:
        wrapper.__signature__ = step.signature  # type: ignore[attr-defined]
        wrapper.__annotations__ = dict(getattr(fn, "__annotations__", {}))
    return wrapper


__all__ = ["zone_bound"]
