"""Sensitive values: the vault keeps the value, a handle travels, the egress guard watches.

`tether.sensitive(value, label="ssn")` runs inside a step: the value goes into the vault
of the step's zone and a `Sensitive` handle (zone, id, label, redacted preview) is what
workflow code, Temporal and other zones see. Handles resolve only in steps of their own
zone. `check_egress` is called before anything leaves a process for a model or a tool.
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
import os
import re
import secrets
import sys
import threading
import types
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python

from tether.errors import EgressBlocked, SensitiveValueMissing, TetherError, UsageError
from tether.vault import current_vault

if TYPE_CHECKING:
    from tether.step import Step

T = TypeVar("T")
KIND = "tether.sensitive"
MAIN_ZONE = "main"
"""The zone of workflow code and of steps without `runs_on` (the control worker)."""
LOCAL_ZONE = "local"
"""The zone of code running outside any worker (scripts, unit tests)."""
MIN_TRACKED = 5
"""Revealed strings shorter than this are not searched for in outgoing payloads."""

_TOKEN = re.compile(r"<<sensitive:([^@<>]{1,64})@([a-z0-9_-]+)/([0-9a-f]{8,64})")
_LABEL = re.compile(r"[A-Za-z0-9_.\- ]{1,64}")
_log = logging.getLogger("tether.sensitive")


class Sensitive(BaseModel, Generic[T]):
    """A handle on a sensitive value kept in the vault of its zone; it travels instead of the value.

    As a step's return annotation (`-> Sensitive[str]`) it makes the step store its result
    in the vault and return the handle. Inside a step of the same zone, `reveal()` returns
    the value, and a handle passed to a parameter annotated with the plain type (`ssn: str`)
    arrives resolved. Formatted into a string it becomes a marker the egress guard blocks.

    Attributes:
        zone: The zone whose vault holds the value.
        id: The value's id in that vault.
        label: What the value is ("ssn", "medical_notes").
        preview: A redacted preview safe to show and send (e.g. "***-**-6789"), or None.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["tether.sensitive"] = KIND
    zone: str
    id: str
    label: str
    preview: str | None = None

    def reveal(self) -> T:
        """The value, inside a step running in the handle's zone.

        Raises:
            UsageError: Called from workflow code, which only ever sees handles.
            EgressBlocked: Called in a step of another zone.
            SensitiveValueMissing: This worker's vault does not hold the value.
        """
        here = current_zone()
        if here is None:
            raise UsageError(f"workflow code cannot reveal sensitive value {self.label!r}: pass the "
                             f"handle to a step with runs_on={self.zone!r} and use the value there")
        if here not in (self.zone, LOCAL_ZONE):
            raise EgressBlocked(label=self.label, zone=self.zone, destination=f"a step in zone {here!r}")
        try:
            value = current_vault().get(self.zone, self.id)
        except KeyError:
            raise SensitiveValueMissing(
                f"sensitive value {self.label!r} ({self.id[:8]}…) is not in the vault {current_vault()!r} of "
                f"zone {self.zone!r}: the zone's workers must share one vault (TETHER_VAULT)") from None
        _track(value, self.label, self.zone)
        inner = type(self).__pydantic_generic_metadata__["args"]
        return TypeAdapter(inner[0]).validate_python(value) if inner else value  # type: ignore[no-any-return]

    def __str__(self) -> str:
        shown = f" {self.preview}" if self.preview else ""
        return f"<<sensitive:{self.label}@{self.zone}/{self.id}{shown}>>"


def sensitive(value: T, /, *, label: str = "value",
              preview: str | bool | Callable[[T], str] | None = None) -> Sensitive[T]:
    """Store `value` in the vault of the zone running this step and return its handle.

    Args:
        value: Any JSON-serialisable value (str, number, pydantic model, dict…).
        label: What it is, named in handles and in `EgressBlocked` ("ssn", "diagnosis").
        preview: A redacted preview to carry in the handle: a string, True for `mask(value)`,
            or a function of the value. Default: none.

    Raises:
        UsageError: Called from workflow code (sensitive values are produced by steps), or
            the label is not 1-64 letters, digits, spaces, '.', '_' or '-'.

    Example:
        >>> @tether.step(runs_on="vault")
        ... def lookup(customer_id: str) -> Customer:
        ...     row = db.fetch(customer_id)
        ...     return Customer(name=row.name, ssn=tether.sensitive(row.ssn, label="ssn", preview=True))
    """
    here = current_zone()
    if here is None:
        raise UsageError("tether.sensitive() stores a value in the vault of the zone running the step: "
                         "call it in a step (e.g. @tether.step(runs_on='vault')), not in workflow code")
    if not _LABEL.fullmatch(label):
        raise UsageError(f"sensitive label {label!r} is not valid: use 1-64 letters, digits, spaces, '.', '_', '-'")
    data = to_jsonable_python(value)
    handle_id = secrets.token_hex(16)
    current_vault().put(here, handle_id, label, data)
    _track(data, label, here)
    return Sensitive(zone=here, id=handle_id, label=label, preview=_preview(value, preview))


def mask(value: Any, *, keep: int = 4) -> str:
    """`value` as text with every letter and digit but the last `keep` replaced by '*'.

    Example:
        >>> mask("123-45-6789")
        '***-**-6789'
    """
    text = str(value)
    visible = sum(c.isalnum() for c in text) - keep
    out = []
    for c in text:
        if c.isalnum() and visible > 0:
            out.append("*")
            visible -= 1
        else:
            out.append(c)
    return "".join(out)


def _preview(value: Any, preview: str | bool | Callable[[Any], str] | None) -> str | None:
    if preview is None or preview is False:
        return None
    if preview is True:
        return mask(value)
    if callable(preview):
        return str(preview(value))
    return str(preview)


# ---- where code runs -------------------------------------------------------------------


def current_zone() -> str | None:
    """The zone of the running code: a step's zone, `MAIN_ZONE` for steps without one,
    `LOCAL_ZONE` outside any worker, None in workflow code."""
    from tether.engine import durable

    if durable.in_workflow():
        return None
    queue = durable.current_queue()
    if queue is None:
        return LOCAL_ZONE
    return queue.split(durable.ZONE_SEPARATOR, 1)[1] if durable.ZONE_SEPARATOR in queue else MAIN_ZONE


# ---- values seen in this process -------------------------------------------------------


class _Seen:
    """Strings of sensitive values this process has stored or revealed (bounded, newest kept)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self.values: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self.lock = threading.Lock()

    def add(self, text: str, label: str, zone: str) -> None:
        with self.lock:
            self.values[text] = (label, zone)
            self.values.move_to_end(text)
            while len(self.values) > self.limit:
                self.values.popitem(last=False)

    def snapshot(self) -> list[tuple[str, str, str]]:
        with self.lock:
            return [(t, lz[0], lz[1]) for t, lz in self.values.items()]


_seen = _Seen()
_attempt: contextvars.ContextVar[list[tuple[str, str, str]] | None] = contextvars.ContextVar(
    "tether_sensitive_attempt", default=None)


def _track(data: Any, label: str, zone: str) -> None:
    found = _attempt.get()
    for text in _strings(data):
        if len(text) >= MIN_TRACKED:
            _seen.add(text, label, zone)
            if found is not None:
                found.append((text, label, zone))


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, bool) or data is None:
        return
    elif isinstance(data, int | float):
        yield str(data)
    elif isinstance(data, dict):
        for v in data.values():
            yield from _strings(v)
    elif isinstance(data, list | tuple):
        for v in data:
            yield from _strings(v)


# ---- the egress guard ------------------------------------------------------------------

_declared: list[tuple[str, str]] = []


def declare_destination(prefix: str, *, zone: str) -> None:
    """Declare that models or tools whose destination starts with `prefix` run inside `zone`.

    Local models (`local:…`) are always inside the zone of the step calling them; cloud
    providers are outside every zone unless declared here (or in `TETHER_ZONE_DESTINATIONS`,
    `zone=prefix` pairs separated by commas).

    Example:
        >>> declare_destination("openai-compatible:llama@http://10.0.0.5", zone="vault")
    """
    _declared.append((prefix, zone))


def destination_zone(destination: str, *, here: str) -> str | None:
    """The zone a destination runs in, or None when it is outside every zone."""
    if destination.startswith("zone:"):
        return destination[5:]
    if destination.startswith("local:"):
        return here
    declared = list(_declared)
    for pair in filter(None, (os.environ.get("TETHER_ZONE_DESTINATIONS") or "").split(",")):
        zone, _, prefix = pair.partition("=")
        declared.append((prefix.strip(), zone.strip()))
    for prefix, zone in declared:
        if prefix and destination.startswith(prefix):
            return zone
    return None


def check_egress(payload: Any, *, destination: str, zone: str | None = None) -> None:
    """Raise `EgressBlocked` if `payload` carries a sensitive value to a destination outside its zone.

    Call it before sending anything to a model or a tool. It finds handles (objects,
    their JSON form, or their marker inside a string) and, outside workflow code, the
    text of values this process revealed or stored. Everything else passes.

    Args:
        payload: Anything JSON-like: messages, a request model, a dict of tool arguments.
        destination: A model string ("openai:gpt-4.1-mini", "local:smollm2"), a tool name,
            or "zone:NAME".
        zone: The zone the call is made from (default: the running step's zone).

    Raises:
        EgressBlocked: Names the value's label, its zone and the destination.
    """
    here = zone or current_zone() or MAIN_ZONE
    target = destination_zone(destination, here=here)
    data = to_jsonable_python(payload, fallback=str)
    seen = [] if current_zone() is None else _seen.snapshot()  # workflow code: handles only, deterministic
    hit = _first_leak(data, target, seen)
    if hit is not None:
        label, origin = hit
        _log.warning("egress blocked: %r from zone %r to %s", label, origin, destination)
        raise EgressBlocked(label=label, zone=origin, destination=destination)


def _first_leak(data: Any, target: str | None, seen: list[tuple[str, str, str]], *,
                handles: bool = True) -> tuple[str, str] | None:
    """(label, zone) of the first sensitive value in `data` that does not belong to `target`.

    With `handles=False` only raw values count (handles may go where the check is for).
    """
    if isinstance(data, dict):
        if data.get("kind") == KIND and isinstance(data.get("zone"), str):
            if not handles or data["zone"] == target:
                return None
            return str(data.get("label", "value")), data["zone"]
        for v in data.values():
            if (hit := _first_leak(v, target, seen, handles=handles)) is not None:
                return hit
    elif isinstance(data, list | tuple):
        for v in data:
            if (hit := _first_leak(v, target, seen, handles=handles)) is not None:
                return hit
    elif isinstance(data, str):
        for m in _TOKEN.finditer(data) if handles else ():
            if m.group(2) != target:
                return m.group(1), m.group(2)
        for text, label, zone in seen:
            if zone != target and text in data:
                return label, zone
    return None


# ---- steps: resolve handles on the way in, seal results on the way out ------------------


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
        if attempt:
            data = to_jsonable_python(result, fallback=str)
            outside = [(t, lbl, z) for t, lbl, z in attempt if z != MAIN_ZONE]
            hit = _first_leak(data, MAIN_ZONE, outside, handles=False) if outside else None
            if hit is not None:
                raise EgressBlocked(label=hit[0], zone=hit[1], destination="workflow code (its result)",
                                    detail=f"step {self.step.name!r} returned the value itself; return "
                                           "a handle from tether.sensitive() or a non-sensitive summary")
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
        raise withheld from None
    finally:
        _attempt.reset(token)


_WITHHELD: dict[tuple[str, bool], type[TetherError]] = {}


def _withheld(exc: Exception, found: list[tuple[str, str, str]]) -> TetherError | None:
    """The same error with sensitive values cut from its message: error messages reach the
    Temporal server unencrypted. Keeps the class name, so retry rules by type still apply."""
    text = str(exc)
    hits = [(t, label) for t, label, _ in found if t in text]
    if not hits:
        return None
    for t, label in hits:
        text = text.replace(t, f"<{label} withheld>")
    retryable = getattr(exc, "retryable", True) is not False
    name = type(exc).__name__
    cls = _WITHHELD.get((name, retryable))
    if cls is None:
        cls = _WITHHELD[(name, retryable)] = type(name, (TetherError,), {"retryable": retryable,
                                                                         "__module__": __name__})
    return cls(text)


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


class _CallableModule(types.ModuleType):
    """Lets `tether.sensitive(value, label=...)` call `sensitive` while `tether.sensitive.X`
    stays this module (so `tether.sensitive.check_egress` works too)."""

    def __call__(self, value: Any, /, *, label: str = "value",
                 preview: str | bool | Callable[[Any], str] | None = None) -> Sensitive[Any]:
        return sensitive(value, label=label, preview=preview)


sys.modules[__name__].__class__ = _CallableModule

__all__ = [
    "LOCAL_ZONE",
    "MAIN_ZONE",
    "Sensitive",
    "check_egress",
    "current_zone",
    "declare_destination",
    "destination_zone",
    "mask",
    "sensitive",
    "zone_bound",
]
