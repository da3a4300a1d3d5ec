"""Studio's templates and the filters they use: times, durations, money, JSON with sensitive handles.

Runs in the Studio server. Values reach the templates already decrypted (the client's
payload codec); sensitive values are only ever handles and are shown as such.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from tether.durations import format_duration

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
_MARKER = re.compile(r"<<sensitive:([^@<>]{1,64})@([a-z0-9_-]+)/([0-9a-f]{8,64})(?: ([^>]*))?>>")
MAX_STRING = 4000
"""Longest string shown whole inside JSON values (the rest behind a count)."""

STATUS_CLASS = {"completed": "ok", "answered": "ok", "running": "live", "waiting": "live", "open": "live",
                "scheduled": "muted", "retrying": "warn", "failed": "bad", "timed out": "bad", "expired": "bad",
                "cancelled": "muted", "terminated": "muted", "continued": "muted", "noted": "info",
                "stuck": "bad", "lost": "warn"}


def environment() -> Environment:
    """The Jinja environment of Studio's templates (autoescaped, with Studio's filters)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(when=when, ago=ago, took=took, usd=usd, json_html=json_html, text_html=text_html,
                       status_class=status_class, pct=pct, secs=secs, num=num)
    return env


def when(t: datetime | None) -> str:
    """Local date and time, or "-"."""
    return t.astimezone().strftime("%Y-%m-%d %H:%M:%S") if t else "-"


def ago(t: datetime | None, now: datetime | None = None) -> str:
    """How long ago, e.g. "3m ago"."""
    if t is None:
        return "-"
    seconds = ((now or datetime.now(UTC)) - t).total_seconds()
    return f"{format_duration(max(seconds, 0))} ago"


def took(seconds: float | None) -> str:
    """A duration, or "-"."""
    return format_duration(seconds) if seconds is not None else "-"


def usd(x: float | None) -> str:
    """Dollars with enough digits for model prices ("$0.00042"), or "-" when unknown."""
    if x is None:
        return "-"
    if x == 0:
        return "$0"
    return f"${x:.6f}".rstrip("0").rstrip(".") if x < 1 else f"${x:,.2f}"


def pct(x: float) -> str:
    """A share as a percentage."""
    return f"{100 * x:.1f}%"


def secs(x: float) -> str:
    """Seconds as ms below one second."""
    if x < 0.01:
        return f"{x * 1000:.1f} ms"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def num(x: float | int) -> str:
    """A count with thousands separators."""
    return f"{x:,}"


def status_class(status: str | None) -> str:
    """The CSS class of a status badge."""
    return STATUS_CLASS.get(status or "", "muted")


def text_html(text: Any) -> Markup:
    """Escaped text, with sensitive-value markers shown as handle badges."""
    out: list[str] = []
    pos = 0
    s = str(text)
    for m in _MARKER.finditer(s):
        out.append(str(escape(s[pos:m.start()])))
        out.append(_badge(m.group(1), m.group(2), m.group(4)))
        pos = m.end()
    out.append(str(escape(s[pos:])))
    return Markup("".join(out))


def _badge(label: str, zone: str, preview: str | None) -> str:
    shown = f" {escape(preview)}" if preview else ""
    return (f'<span class="handle" title="sensitive value kept in the vault of zone {escape(zone)}">'
            f"&#128274; {escape(label)}@{escape(zone)}{shown}</span>")


def _is_handle(value: Any) -> bool:
    return isinstance(value, dict) and value.get("kind") == "tether.sensitive" and "zone" in value


def json_html(value: Any, indent: int = 0) -> Markup:
    """A JSON value as highlighted, escaped HTML; sensitive handles as badges."""
    return Markup("".join(_json(value, indent)))


def _json(value: Any, level: int) -> list[str]:
    pad = "  " * level
    if _is_handle(value):
        return [_badge(str(value.get("label", "value")), str(value["zone"]), value.get("preview"))]
    if isinstance(value, dict):
        if not value:
            return ["{}"]
        parts = ["{\n"]
        for i, (k, v) in enumerate(value.items()):
            parts += [f'{pad}  <span class="k">{escape(json.dumps(str(k), ensure_ascii=False))}</span>: ',
                      *_json(v, level + 1), ",\n" if i < len(value) - 1 else "\n"]
        return [*parts, f"{pad}}}"]
    if isinstance(value, list | tuple):
        if not value:
            return ["[]"]
        parts = ["[\n"]
        for i, v in enumerate(value):
            parts += [f"{pad}  ", *_json(v, level + 1), ",\n" if i < len(value) - 1 else "\n"]
        return [*parts, f"{pad}]"]
    if isinstance(value, str):
        shown = value if len(value) <= MAX_STRING else value[:MAX_STRING] + f"…(+{len(value) - MAX_STRING} chars)"
        return [f'<span class="s">{text_html(json.dumps(shown, ensure_ascii=False))}</span>']
    if isinstance(value, bool) or value is None:
        return [f'<span class="b">{json.dumps(value)}</span>']
    if isinstance(value, int | float):
        return [f'<span class="n">{escape(json.dumps(value))}</span>']
    return [f'<span class="s">{text_html(str(value))}</span>']
