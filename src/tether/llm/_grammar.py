"""JSON schemas made safe for llama.cpp's grammar compiler (`local:` models).

Runs on workers, before a schema reaches llama.cpp. llama-cpp-python turns a `pattern` into
grammar text almost verbatim, and llama.cpp's grammar knows far fewer escapes than a regular
expression: `\\d`, `\\.` or `\\w` made its parser fail and the process crash. Patterns are
rewritten here into the subset both understand (`\\d` -> `[0-9]`, `\\.` -> `[\\x2E]`, `(?:` -> `(`,
`.` -> any character allowed in a JSON string, ...); what has no such rewrite (look-arounds,
word boundaries, back-references) is refused with a `ConfigError` naming the field and the
pattern. A rewritten pattern is a subset of the original: every string the grammar lets the
model write still matches it. The rewrite is idempotent.
"""

from __future__ import annotations

import re
from typing import Any

from tether.errors import ConfigError

JSON_SAFE = r"\x22\x5C\x00-\x1F"
"""Characters a JSON string cannot hold unescaped (quote, backslash, controls): excluded from
negated classes so the model cannot end or break the JSON string it is writing."""

_CLASS_OF = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " "}
"""Shorthand classes as llama.cpp ranges. `\\s` is a plain space: tabs and newlines are not
allowed raw inside a JSON string."""

_NEGATED = {"D": "0-9", "W": "a-zA-Z0-9_", "S": " "}
_CONTROL = {"t", "n", "r"}  # escapes llama.cpp's grammar reads like a regular expression
_OTHER = {"f": r"\x0C", "v": r"\x0B", "a": r"\x07", "0": r"\x00"}
_HEX = re.compile(r"x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}")
_QUANTIFIER = re.compile(r"\{(\d+(,\d*)?|,\d+)\}")

_WHY = {
    "b": r"\b (a word boundary)", "B": r"\B (a word boundary)", "A": r"\A (an anchor)",
    "Z": r"\Z (an anchor)", "z": r"\z (an anchor)", "p": r"\p (a Unicode property)",
    "P": r"\P (a Unicode property)", "N": r"\N (a named character)",
}


_DATA = {"default", "examples", "const", "enum"}
"""Keywords whose values are data, not schemas: a `pattern` key inside them is left alone."""


class Unsupported(Exception):
    """A pattern uses something llama.cpp's grammar cannot express; the message says what."""


def grammar_safe(schema: dict[str, Any], label: str = "") -> dict[str, Any]:
    """`schema` with every string `pattern` rewritten for llama.cpp's grammar.

    Args:
        schema: A JSON schema (not modified).
        label: What the schema describes, put before a field's name in errors
            (e.g. "Claim." or "tool 'lookup' argument ").

    Raises:
        ConfigError: A pattern cannot be expressed; the message names the field and the pattern.
    """
    return _walk(schema, label, "")  # type: ignore[no-any-return]


def _walk(node: Any, label: str, path: str) -> Any:
    if isinstance(node, list):
        return [_walk(v, label, path) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: _walk(v, label, f"{path}.{name}" if path else name) for name, v in value.items()}
        elif key == "$defs" and isinstance(value, dict):
            out[key] = {name: _walk(v, label, name) for name, v in value.items()}
        elif key == "items":
            out[key] = _walk(value, label, f"{path}[]")
        elif key in _DATA:
            out[key] = value
        elif key == "pattern" and isinstance(value, str):
            out[key] = _pattern(value, f"{label}{path or 'value'}")
        else:
            out[key] = _walk(value, label, path)
    return out


def _pattern(pattern: str, field: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{field}: pattern /{pattern}/ is not a valid regular expression ({exc})") from None
    try:
        return translate(pattern)
    except Unsupported as exc:
        raise ConfigError(f"{field}: pattern /{pattern}/ uses {exc}, which local models' grammar (llama.cpp) "
                          f"cannot express; rewrite the pattern without it, or use another model") from None


def translate(pattern: str) -> str:
    """A valid regular expression rewritten for llama.cpp's grammar, anchored as `^...$`.

    Raises:
        Unsupported: The pattern needs a feature the grammar lacks; the message names it.
    """
    body = pattern[1:] if pattern.startswith("^") else pattern
    if body.endswith("$") and not _escaped(body, len(body) - 1):
        body = body[:-1]
    out, top_level_or = _Rewriter(body).run()
    return f"^({out})$" if top_level_or else f"^{out}$"


def _escaped(text: str, i: int) -> bool:
    """True when the character at `i` is preceded by an odd number of backslashes."""
    n = 0
    while i - n - 1 >= 0 and text[i - n - 1] == "\\":
        n += 1
    return n % 2 == 1


class _Rewriter:
    """One left-to-right pass over a pattern body (anchors removed)."""

    def __init__(self, text: str) -> None:
        self.text, self.i, self.depth, self.top_level_or = text, 0, 0, False

    def run(self) -> tuple[str, bool]:
        out: list[str] = []
        while self.i < len(self.text):
            out.append(self._unit())
        return "".join(out), self.top_level_or

    def _unit(self) -> str:
        c = self.text[self.i]
        self.i += 1
        if c == "\\":
            return self._escape(in_class=False)
        if c == "[":
            return self._char_class()
        if c == "(":
            self.depth += 1
            return self._group()
        if c == ")":
            self.depth -= 1
            return c
        if c == "|":
            self.top_level_or = self.top_level_or or self.depth == 0
            return c
        if c == ".":
            return f"[^{JSON_SAFE}]"
        if c in "^$":
            return ""  # anchors: a generated value is always the whole string
        if c in "*+?":
            return c + self._drop_lazy()
        if c == "{":
            return self._brace()
        if c in "]}":
            return f"[\\x{ord(c):02X}]"  # literal in Python's re; llama-cpp-python would loop on it
        return c

    def _drop_lazy(self) -> str:
        # lazy and possessive quantifiers generate the same strings as greedy ones
        if self.i < len(self.text) and self.text[self.i] in "?+":
            self.i += 1
        return ""

    def _brace(self) -> str:
        m = _QUANTIFIER.match(self.text, self.i - 1)
        if m is None:
            return r"[\x7B]"  # a `{` that is no quantifier is a literal in Python's re
        self.i = m.end()
        return m.group(0) + self._drop_lazy()

    def _group(self) -> str:
        if not self.text.startswith("?", self.i):
            return "("
        rest = self.text[self.i:]
        if rest.startswith("?:"):
            self.i += 2
            return "("
        named = re.match(r"\?P<\w+>", rest)
        if named:
            self.i += named.end()
            return "("
        if rest.startswith(("?=", "?!", "?<=", "?<!")):
            raise Unsupported(f"the look-around ({rest[:3] if rest.startswith('?<') else rest[:2]}...)")
        raise Unsupported(f"the group syntax ({rest[:2]}...)")

    def _escape(self, *, in_class: bool) -> str:
        if self.i >= len(self.text):
            raise Unsupported("a trailing backslash")
        c = self.text[self.i]
        self.i += 1
        if c in _CLASS_OF:
            return _CLASS_OF[c] if in_class else f"[{_CLASS_OF[c]}]"
        if c in _NEGATED:
            if in_class:
                raise Unsupported(f"\\{c} inside [...]")
            return f"[^{_NEGATED[c]}{JSON_SAFE}]"
        code = self._char_code(c)
        # outside [...] a one-character class keeps a following quantifier on this character alone
        return code if in_class else f"[{code}]"

    def _char_code(self, c: str) -> str:
        """An escaped character as an escape llama.cpp's grammar reads (`\\n`, `\\x2E`, ...)."""
        if c in _CONTROL:
            return "\\" + c
        hexa = _HEX.match(self.text, self.i - 1)
        if hexa:
            self.i = hexa.end()
            return "\\" + hexa.group(0)
        if not c.isalnum() and c != "_":
            return f"\\x{ord(c):02X}" if ord(c) < 0x100 else f"\\u{ord(c):04X}"
        if c in _OTHER:
            return _OTHER[c]
        raise Unsupported(_WHY.get(c, f"\\{c} (a back-reference)" if c.isdigit() else f"\\{c}"))

    def _char_class(self) -> str:
        parts: list[str] = []
        negated = self.text.startswith("^", self.i)
        if negated:
            self.i += 1
        first = True
        while self.i < len(self.text):
            c = self.text[self.i]
            self.i += 1
            if c == "]" and not first:
                body = "".join(parts)
                if negated and JSON_SAFE not in body:
                    body += JSON_SAFE
                return f"[{'^' if negated else ''}{body}]"
            if c == "\\":
                parts.append(self._escape(in_class=True))
            elif c in "[]":
                parts.append(f"\\x{ord(c):02X}")  # a literal bracket (Python's re allows `[]...]`)
            else:
                parts.append(c)
            first = False
        raise Unsupported("an unclosed [")  # re.compile would have refused it first
