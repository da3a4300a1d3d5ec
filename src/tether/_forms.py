"""The forms a sensitive value takes when code transforms it, and the search for them.

Used on workers at the zone boundary (step results, error chains, heartbeat details) to
find a revealed value that code changed on its way out: escaped by `repr()` or
`json.dumps`, upper- or lower-cased, with separators or whitespace removed, base64-,
hex- or URL-encoded, or used as a dict key. Pure functions; no I/O.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

MIN_CANON = 5
"""A value whose letters and digits number fewer than this is matched exactly only."""

_NOT_ALNUM = re.compile(r"[\W_]+")


def canon(text: str) -> str:
    """`text` case-folded with everything but letters and digits removed ("123-45-6789" -> "123456789")."""
    return _NOT_ALNUM.sub("", text.casefold())


@dataclass(frozen=True)
class Forms:
    """The forms of one value: texts searched as they are, and texts searched in `canon()` form."""

    exact: tuple[str, ...]
    canonical: tuple[str, ...]


@lru_cache(maxsize=4096)
def forms_of(text: str) -> Forms:
    """Every form of `text` the boundary looks for (cached: values repeat across attempts)."""
    exact = {text, json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1], repr(text)[1:-1],
             text.encode("unicode_escape").decode("ascii"), quote(text), quote_plus(text)}
    exact.update(_base64_forms(text.encode()))
    whole = canon(text)
    # the ASCII-escaped form too (JSON of non-ASCII text, then upper-cased or stripped)
    canonical = {whole, canon(json.dumps(text)), text.encode().hex()} if len(whole) >= MIN_CANON else set()
    return Forms(exact=tuple(sorted(e for e in exact if e)), canonical=tuple(sorted(canonical)))


def _base64_forms(data: bytes) -> Iterator[str]:
    """The base64 text `data` produces wherever it sits in a longer message (3 alignments,
    standard and URL-safe alphabets), cut to the characters that depend on `data` only."""
    for offset in range(3):
        enc = base64.b64encode(b"\0" * offset + data).decode()
        middle = enc[4 if offset else 0: 4 * ((offset + len(data)) // 3)]
        if len(middle) >= 8:
            yield middle
            yield middle.replace("+", "-").replace("/", "_")


def texts(data: Any) -> Iterator[str]:
    """Every string in JSON-like `data`: values, dict keys, numbers as text."""
    if isinstance(data, str):
        yield data
    elif isinstance(data, bool) or data is None:
        return
    elif isinstance(data, int | float):
        yield str(data)
    elif isinstance(data, dict):
        for k, v in data.items():
            yield from texts(k)
            yield from texts(v)
    elif isinstance(data, list | tuple | set | frozenset):
        for v in data:
            yield from texts(v)


def find(strings: Iterable[str], values: Iterable[tuple[str, str, str]]) -> tuple[str, str, bool] | None:
    """The first of `values` ((text, label, zone) triples) found in any form in `strings`.

    Returns:
        (label, zone, exact): `exact` is False when only a case/separator-insensitive or
        hex form matched (the text cannot be cut out, only withheld whole); None if none is found.
    """
    pool = [(forms_of(t), label, zone) for t, label, zone in values]
    if not pool:
        return None
    for s in strings:
        folded: str | None = None
        for forms, label, zone in pool:
            if any(e in s for e in forms.exact):
                return label, zone, True
            if forms.canonical:
                folded = canon(s) if folded is None else folded
                if any(c in folded for c in forms.canonical):
                    return label, zone, False
    return None


def scrub(text: str, values: Iterable[tuple[str, str, str]]) -> str:
    """`text` with every exact form of `values` replaced by `<label withheld>`; if a
    normalised form remains, the whole text is replaced by a note naming the label."""
    pool = sorted(values, key=lambda v: -len(v[0]))
    for value, label, _ in pool:
        for form in sorted(forms_of(value).exact, key=len, reverse=True):
            if form in text:
                text = text.replace(form, f"<{label} withheld>")
    hit = find([text], pool)
    if hit is not None:
        return f"<text withheld: it carried a form of sensitive value {hit[0]!r}>"
    return text
