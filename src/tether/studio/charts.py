"""Small SVG charts rendered on the server (no chart library, nothing loaded from anywhere).

Runs in the Studio server; pure functions from numbers to SVG markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

PALETTE = ("#2f6fde", "#e08a1e", "#2a9d6f", "#b5476b", "#7a5cc7", "#5b8a99", "#c2a31a", "#8a8a8a")


@dataclass
class Bar:
    """One labelled bar; `values` holds one number per series."""

    label: str
    values: Sequence[float]


def bars(items: Sequence[Bar], *, series: Sequence[str], fmt: Callable[[float], str],
         width: int = 560, row: int = 22, label_width: int = 190) -> Markup:
    """Horizontal bars, one row per item, one bar per series (e.g. p50 and p95), value at the end.

    Example:
        >>> bars([Bar("scripted:a", [0.2, 0.4])], series=["p50", "p95"], fmt=lambda x: f"{x:.1f}s")
    """
    if not items:
        return Markup("")
    top = max((v for b in items for v in b.values), default=0.0) or 1.0
    plot = width - label_width - 80
    per = row * len(series) + 8
    height = per * len(items) + (18 if len(series) > 1 else 0)
    out = [_open(width, height)]
    y = 0
    for b in items:
        out.append(_text(label_width - 8, y + per / 2 - 1, _cut(b.label, 28), anchor="end", cls="lbl"))
        for i, v in enumerate(b.values):
            w = max(1.0, plot * v / top) if v > 0 else 0
            by = y + i * row + 2
            out.append(f'<rect x="{label_width}" y="{by}" width="{w:.1f}" height="{row - 6}" rx="2" '
                       f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(b.label)} · {escape(series[i])}: '
                       f"{escape(fmt(v))}</title></rect>")
            out.append(_text(label_width + w + 6, by + row / 2 + 1, fmt(v), cls="val"))
        y += per
    if len(series) > 1:
        out.append(_legend(series, label_width, height - 4))
    out.append("</svg>")
    return Markup("".join(out))


def columns(days: Sequence[str], stacks: dict[str, Sequence[float]], *, fmt: Callable[[float], str],
            width: int = 560, height: int = 170) -> Markup:
    """Stacked columns per day, one colour per series (e.g. cost per workflow per day)."""
    if not days or not stacks:
        return Markup("")
    names = list(stacks)
    totals = [sum(stacks[n][d] for n in names) for d in range(len(days))]
    top = max(totals) or 1.0
    plot_h = height - 64  # room for the value above the tallest column and the legend below
    slot = (width - 40) / len(days)
    bar_w = min(46.0, slot * 0.6)
    out = [_open(width, height), f'<line x1="30" y1="{plot_h + 20}" x2="{width}" y2="{plot_h + 20}" class="axis"/>']
    for d, day in enumerate(days):
        x = 30 + d * slot + (slot - bar_w) / 2
        base = float(plot_h + 20)
        for i, n in enumerate(names):
            v = stacks[n][d]
            if v <= 0:
                continue
            h = max(1.0, plot_h * v / top)
            base -= h
            out.append(f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                       f'fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(day)} · {escape(n)}: '
                       f"{escape(fmt(v))}</title></rect>")
        if totals[d] > 0:
            out.append(_text(x + bar_w / 2, base - 7, fmt(totals[d]), anchor="middle", cls="val"))
        out.append(_text(x + bar_w / 2, plot_h + 33, day[5:], anchor="middle", cls="lbl"))
    out.append(_legend(names, 30, height - 6))
    out.append("</svg>")
    return Markup("".join(out))


def gauge(share: float, *, width: int = 260) -> Markup:
    """A single horizontal share bar (0..1), e.g. the human intervention rate."""
    w = max(0.0, min(1.0, share)) * (width - 2)
    return Markup(f'{_open(width, 14)}<rect x="1" y="1" width="{width - 2}" height="12" rx="3" class="track"/>'
                  f'<rect x="1" y="1" width="{w:.1f}" height="12" rx="3" fill="{PALETTE[0]}"/></svg>')


def span_bar(start: float, length: float, *, cls: str, width: int = 160) -> Markup:
    """A step's place in its run's timeline: `start` and `length` as shares of the run's duration."""
    x = max(0.0, min(1.0, start)) * width
    w = max(2.0, min(1.0, length) * width)
    w = min(w, width - x) if x < width else 2.0
    return Markup(f'<svg class="tl" width="{width}" height="10" viewBox="0 0 {width} 10" aria-hidden="true">'
                  f'<rect x="0" y="4" width="{width}" height="2" class="track"/>'
                  f'<rect x="{x:.1f}" y="1" width="{w:.1f}" height="8" rx="2" class="{cls}"/></svg>')


def _open(width: int, height: float) -> str:
    return (f'<svg class="chart" width="{width}" height="{height:.0f}" viewBox="0 0 {width} {height:.0f}" '
            'role="img" xmlns="http://www.w3.org/2000/svg">')


def _text(x: float, y: float, text: str, *, anchor: str = "start", cls: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" dominant-baseline="middle" '
            f'class="{cls}">{escape(text)}</text>')


def _legend(names: Sequence[str], x: float, y: float) -> str:
    out = []
    for i, n in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x:.1f}" y="{y - 8:.1f}" width="9" height="9" rx="2" fill="{colour}"/>')
        out.append(_text(x + 13, y - 3.5, _cut(n, 24), cls="lbl"))
        x += 22 + 7 * min(len(n), 24)
    return "".join(out)


def _cut(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
