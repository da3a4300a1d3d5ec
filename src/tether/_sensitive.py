"""Sensitive values: the vault keeps the value, a handle travels, the egress guard watches.

`tether.sensitive(value, label="ssn")` runs inside a step: the value goes into the vault
of the step's zone and a `Sensitive` handle (zone, id, label, redacted preview) is what
workflow code, Temporal and other zones see. Handles resolve only in steps of their own
zone. `check_egress` is called before anything leaves a process for a model or a tool.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any, Final, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic_core import to_jsonable_python

from tether import _forms, _runtime, settings
from tether.errors import EgressBlocked, SensitiveValueMissing, UsageError
from tether.vault import current_vault

T = TypeVar("T")
KIND: Final = "tether.sensitive"
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
    return Sensitive(zone=here, id=handle_id, label=label, preview=_preview(value, preview, label))


def mask(value: Any, *, keep: int = 4) -> str:
    """`value` as text with every letter and digit but the last `keep` replaced by '*'.

    At most half of the letters and digits show, and none of a value with fewer than 5
    (a PIN or a short code is fully masked).

    Example:
        >>> mask("123-45-6789")
        '***-**-6789'
    """
    text = str(value)
    letters = sum(c.isalnum() for c in text)
    # never show more than half, and nothing of a short value (a 4-digit PIN stays "****")
    shown = 0 if letters < MIN_TRACKED else min(keep, letters // 2)
    visible = letters - shown
    out = []
    for c in text:
        if c.isalnum() and visible > 0:
            out.append("*")
            visible -= 1
        else:
            out.append(c)
    return "".join(out)


def _preview(value: Any, preview: str | bool | Callable[[Any], str] | None, label: str) -> str | None:
    if preview is None or preview is False:
        return None
    if preview is True:
        return mask(value)
    shown = str(preview(value)) if callable(preview) else str(preview)
    whole = _forms.canon(str(value)) if isinstance(value, str | int) else ""
    if whole and whole in _forms.canon(shown):  # the preview travels with the handle: it must not be the value
        raise UsageError(f"the preview of sensitive value {label!r} contains the value itself; pass "
                         "preview=True for a masked preview, or a string that does not include it")
    return shown


# ---- where code runs -------------------------------------------------------------------


def current_zone() -> str | None:
    """The zone of the running code: a step's zone, `MAIN_ZONE` for steps without one,
    `LOCAL_ZONE` outside any worker, None in workflow code."""
    return _runtime.current().zone()


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
    declared = [*_declared, *settings.current().zone_destinations]
    for prefix, zone in declared:
        if prefix and destination.startswith(prefix):
            return zone
    return None


def check_egress(payload: Any, *, destination: str, zone: str | None = None) -> None:
    """Raise `EgressBlocked` if `payload` carries a sensitive value to a destination outside its zone.

    Call it before sending anything to a model or a tool. It finds handles (objects,
    plain dicts that lost their type, their marker inside a string, or their str/repr/JSON
    written into text, escaped or not) and, outside workflow code, the text of values
    this process revealed or stored. Everything else passes.

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


def carries_sensitive(payload: Any) -> bool:
    """True when `payload` holds any handle, or (outside workflow code) the text of a value
    this process revealed or stored: it must not be kept anywhere outside its zone's vault."""
    data = to_jsonable_python(payload, fallback=str)
    seen = [] if current_zone() is None else _seen.snapshot()
    return _first_leak(data, None, seen) is not None


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
        if handles and KIND in data and (hit := _untyped_handle(data, target)) is not None:
            return hit
        for text, label, zone in seen:
            if zone != target and text in data:
                return label, zone
    return None


# a handle that lost its type, as text: the repr/str of a dict or of a `Sensitive` (e.g. inside
# a list), or its JSON, possibly escaped again: `'zone': 'vault'`, `zone='vault'`, `\\"zone\\": \\"vault\\"`
_FIELD = r"""\\*['"]?{name}\\*['"]?\s*[:=]\s*\\*['"]([^'"\\]{{1,64}})"""
_ZONE_FIELD = re.compile(_FIELD.format(name="zone"))
_LABEL_FIELD = re.compile(_FIELD.format(name="label"))
_NEAR = 400


def _untyped_handle(text: str, target: str | None) -> tuple[str, str] | None:
    """(label, zone) of a handle written out as text in `text` whose zone is not `target`.

    Every occurrence of the handle kind is looked at with the fields around it; one with no
    zone nearby (e.g. a JSON schema naming the kind) is not a handle.
    """
    start = text.find(KIND)
    while start >= 0:
        around = text[max(0, start - _NEAR): start + _NEAR]
        zones = _ZONE_FIELD.findall(around)
        foreign = [z for z in zones if z != target]
        if foreign:
            labels = _LABEL_FIELD.findall(around)
            return (labels[0] if labels else "value"), foreign[0]
        start = text.find(KIND, start + 1)
    return None


def withhold(data: Any) -> Any:
    """`data` with every form of a value the running step attempt revealed cut out (see
    `tether._forms`): for what leaves a zone step other than its result (heartbeat details).

    Strings inside dicts (keys too), lists and tuples are scrubbed; other objects pass
    through as their JSON form when they carry a value. Outside a step attempt, `data`.
    """
    found = _attempt.get()
    if not found:
        return data
    return _withhold(data, found)


def stream_cut(text: str, *, final: bool = False) -> tuple[int, str | None]:
    """How much of `text`, a reply still being streamed out of the running step attempt, may
    leave its zone now: (characters from the start, None), or (0, label) once it carries a form
    of a value the attempt revealed. While the attempt has revealed values, the last characters
    are held back (twice the longest form's length), so a value arriving token by token is
    caught whole before any part of it leaves (`final`: the reply is complete, nothing is
    held back). Outside a step attempt: all of it.
    """
    found = _attempt.get()
    if not found:
        return len(text), None
    hit = _forms.find([text], found)
    if hit is not None:
        return 0, hit[0]
    if final:
        return len(text), None
    longest = max(len(f) for v, _, _ in found for f in (*_forms.forms_of(v).exact, v))
    return max(0, len(text) - 2 * longest), None


def _withhold(data: Any, found: list[tuple[str, str, str]]) -> Any:
    if isinstance(data, str):
        return _forms.scrub(data, found)
    if isinstance(data, dict):
        return {_withhold(k, found): _withhold(v, found) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return type(data)(_withhold(v, found) for v in data)
    if isinstance(data, bool | int | float) or data is None:
        return _withhold(str(data), found) if _forms.find([str(data)], found) else data
    plain = to_jsonable_python(data, fallback=str)
    return _withhold(plain, found) if _forms.find(_forms.texts(plain), found) else data


def redact(data: Any) -> Any:
    """`data` with the text of every sensitive value this process has seen replaced by
    `<label withheld>` (strings inside dicts and lists too). For traces and logs.

    Example:
        >>> redact("prompt: SSN 123-45-6789")    # after the SSN was revealed here
        'prompt: SSN <ssn withheld>'
    """
    seen = _seen.snapshot()
    if not seen:
        return data
    return _redact(data, sorted(seen, key=lambda s: -len(s[0])))


def _redact(data: Any, seen: list[tuple[str, str, str]]) -> Any:
    if isinstance(data, str):
        for text, label, _ in seen:
            if text in data:
                data = data.replace(text, f"<{label} withheld>")
        return data
    if isinstance(data, dict):
        return {k: _redact(v, seen) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return type(data)(_redact(v, seen) for v in data)
    return data


__all__ = [
    "LOCAL_ZONE",
    "MAIN_ZONE",
    "Sensitive",
    "check_egress",
    "current_zone",
    "declare_destination",
    "destination_zone",
    "mask",
    "redact",
    "sensitive",
    "stream_cut",
    "withhold",
]
