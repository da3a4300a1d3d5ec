"""A run's span tree for the terminal (`tether trace`): steps, attempts, models, tokens, cost, notes.

Runs in the CLI; works on `StoredSpan`s from the local store (or a test capture).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape
from rich.tree import Tree

from tether.durations import format_duration
from tether.observe import _spans as S
from tether.observe._store import SpanEvent, StoredSpan


@dataclass
class TraceView:
    """The spans of one run arranged as a tree."""

    run_id: str
    roots: list[StoredSpan]
    children: dict[str, list[StoredSpan]] = field(default_factory=dict)
    complete: bool = True  # False while the run span itself has not been exported (run in progress)

    def kids(self, span: StoredSpan) -> list[StoredSpan]:
        """The children of `span`, oldest first."""
        return self.children.get(span.span_id, [])

    def walk(self) -> list[StoredSpan]:
        """Every span of the run, depth first."""
        out: list[StoredSpan] = []
        stack = list(reversed(self.roots))
        while stack:
            s = stack.pop()
            out.append(s)
            stack.extend(reversed(self.kids(s)))
        return out


def build(spans: list[StoredSpan], run_id: str) -> TraceView:
    """Arrange `spans` (of the run's traces) into the tree of run `run_id`."""
    by_id = {s.span_id: s for s in spans}
    children: dict[str, list[StoredSpan]] = defaultdict(list)
    for s in spans:
        if s.parent_id in by_id:
            children[s.parent_id].append(s)
    for kids in children.values():
        kids.sort(key=lambda s: (s.start_ns, s.end_ns))
    runs = [s for s in spans if s.name.startswith(f"{S.RUN} ") and s.attr(S.RUN_ID) == run_id]
    if runs:
        return TraceView(run_id, sorted(runs, key=lambda s: s.start_ns), dict(children))
    orphans = [s for s in spans if s.attr(S.RUN_ID) == run_id and s.parent_id not in by_id]
    return TraceView(run_id, sorted(orphans, key=lambda s: s.start_ns), dict(children), complete=False)


# ---- rendering ------------------------------------------------------------------------------

_MARK = {"ok": "[green]✓[/]", "error": "[red]✗[/]", "unset": "[cyan]·[/]"}


def render(view: TraceView, *, content: bool = False) -> Tree:
    """The rich tree of a run: one line per span, notes and decisions in place."""
    title = f"[bold]trace of {escape(view.run_id)}[/]"
    if view.roots:
        title += f"  [dim]trace id {view.roots[0].trace_id}[/]"
    tree = Tree(title)
    if not view.complete:
        tree.add("[yellow]the run span is not stored yet (run in progress?): showing its steps so far[/]")
    for root in view.roots:
        _add(tree, root, view, content)
    return tree


def _add(parent: Tree, span: StoredSpan, view: TraceView, content: bool) -> None:
    node = parent.add(label(span, view))
    # workflow code runs in steps of equal (workflow) time: a note made before scheduling the
    # next step shares that step's start time, and comes first, as in `tether show`
    items: list[tuple[int, int, Any]] = [(k.start_ns, 1, k) for k in view.kids(span)]
    items += [(e.time_ns, 0, e) for e in span.events if e.name in (S.NOTE_EVENT, S.DECISION_EVENT)]
    if content:
        _content(node, span)
    for _, _, item in sorted(items, key=lambda i: (i[0], i[1])):
        if isinstance(item, SpanEvent):
            node.add(event_label(item))
        else:
            _add(node, item, view, content)


def label(span: StoredSpan, view: TraceView | None = None) -> str:
    """One line describing a span: mark, name, duration and what matters for its kind."""
    mark = _MARK.get(span.status, "·")
    took = f"[dim]{format_duration(span.seconds)}[/]"
    kind = span.name.split(" ", 1)[0]
    if span.attr(S.GENAI_OPERATION) == "chat" and span.kind == "client":
        text = _model_label(span)
    elif kind == S.RUN:
        outcome = span.attr(S.OUTCOME, "")
        text = f"[bold]{escape(span.name)}[/] {outcome}"
    elif kind == S.STEP:
        text = _step_label(span, view)
    elif kind == S.ATTEMPT:
        text = f"attempt {span.attr(S.STEP_ATTEMPT, '?')}{_zone(span)}"
    elif kind == S.TOOL:
        call = span.attr(S.GENAI_TOOL_CALL_ID)
        text = f"tool [bold]{escape(str(span.attr(S.GENAI_TOOL_NAME, '')))}[/]" + (f" ({escape(call)})" if call else "")
    elif kind == S.HUMAN:
        text = _human_label(span)
    elif kind == S.EGRESS:
        text = (f"[red]egress blocked[/]: {escape(str(span.attr('tether.egress.label', '')))} from zone "
                f"{escape(str(span.attr('tether.egress.zone', '')))} → "
                f"{escape(str(span.attr('tether.egress.destination', '')))}")
        return f"{mark} {text}"
    else:
        text = escape(span.name)
    error = f"  [red]{escape(_short(span.status_message or '', 160))}[/]" if span.status == "error" else ""
    return f"{mark} {text}  {took}{error}"


def _zone(span: StoredSpan) -> str:
    zone = span.attr(S.STEP_ZONE)
    return f" [dim]@{escape(str(zone))}[/]" if zone else ""


def _step_label(span: StoredSpan, view: TraceView | None) -> str:
    name = str(span.attr(S.STEP_NAME, span.name))
    if span.attr("tether.llm.model"):
        name = f"llm {span.attr('tether.llm.model')} · {_round(span)}"
    attempts = len([k for k in view.kids(span) if k.attr(S.STEP_ATTEMPT)]) if view is not None else 0
    tries = f" [yellow]{attempts} attempts[/]" if attempts > 1 else ""
    why = f" [dim]because {escape(_short(str(span.attr(S.LLM_REASON)), 100))}[/]" if span.attr(S.LLM_REASON) else ""
    return f"step [bold]{escape(name)}[/]{_zone(span)}{tries}{why}"


def _round(span: StoredSpan) -> str:
    parts = [str(span.attr(S.LLM_PURPOSE, "chat"))]
    if span.attr(S.LLM_OUTPUT_NAME):
        parts[0] += f" {span.attr(S.LLM_OUTPUT_NAME)}"
    if span.attr(S.LLM_FALLBACK):
        parts.append(f"fallback {span.attr(S.LLM_FALLBACK)}")
    if span.attr(S.LLM_REPAIR):
        parts.append(f"repair {span.attr(S.LLM_REPAIR)}")
    return " · ".join(parts)


def _model_label(span: StoredSpan) -> str:
    model = span.attr("tether.llm.model") or span.attr(S.GENAI_REQUEST_MODEL)
    bits = [f"model [bold]{escape(str(model))}[/]"]
    if span.attr(S.GENAI_INPUT_TOKENS) is not None:
        bits.append(f"{span.attr(S.GENAI_INPUT_TOKENS)} in / {span.attr(S.GENAI_OUTPUT_TOKENS, 0)} out tokens")
    if span.attr(S.LLM_COST) is not None:
        bits.append(f"${float(span.attr(S.LLM_COST)):.6f}".rstrip("0").rstrip("."))
    finish = span.attr(S.GENAI_FINISH_REASONS)
    if finish:
        bits.append(f"finish {','.join(finish) if isinstance(finish, list) else finish}")
    return " · ".join(bits)


def _human_label(span: StoredSpan) -> str:
    task = span.attr("tether.human.task_id", "")
    status = span.attr("tether.human.status", "open")
    who = f" by {span.attr('tether.human.answered_by')}" if span.attr("tether.human.answered_by") else ""
    question = _short(str(span.attr("tether.human.question", "")), 60)
    return f"human task [bold]{escape(str(task))}[/] {status}{escape(who)}: {escape(question)}"


def event_label(event: SpanEvent) -> str:
    """A note or decision as a tree line."""
    a = event.attributes
    if event.name == S.DECISION_EVENT:
        prefix = f"{S.DECISION_EVENT}.input."
        inputs = ", ".join(f"{k[len(prefix):]}={v}" for k, v in a.items() if k.startswith(prefix))
        return (f"[magenta]◆ decision[/] {escape(str(a.get('tether.decision.name')))} = "
                f"[bold]{a.get('tether.decision.outcome')}[/]" + (f" [dim]({escape(inputs)})[/]" if inputs else ""))
    prefix = f"{S.NOTE_EVENT}."
    facts = ", ".join(f"{k[len(prefix):]}={v}" for k, v in a.items()
                      if k.startswith(prefix) and k != f"{S.NOTE_EVENT}.message")
    return (f"[blue]✎ note[/] {escape(str(a.get('tether.note.message', '')))}"
            + (f" [dim]({escape(facts)})[/]" if facts else ""))


def _content(node: Tree, span: StoredSpan) -> None:
    for key, title in ((S.GENAI_INPUT_MESSAGES, "prompt"), (S.GENAI_OUTPUT_MESSAGES, "response")):
        raw = span.attr(key)
        if not raw:
            continue
        for role, text in _messages(raw):
            node.add(f"[dim]{title} · {escape(role)}:[/] {escape(text)}")


def _messages(raw: str) -> list[tuple[str, str]]:
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return [("?", str(raw))]
    out = []
    for m in data if isinstance(data, list) else []:
        parts = [p for p in m.get("parts") or [] if isinstance(p, dict)]
        out.append((str(m.get("role", "?")), " ".join(part_text(p) for p in parts)))
    return out


def part_text(part: dict[str, Any]) -> str:
    """One message part as a reader sees it: text, `name(arg=value, …)` for a tool call, `→ result`."""
    kind = part.get("type")
    if kind == "tool_call":
        args = part.get("arguments") or {}
        shown = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items()) \
            if isinstance(args, dict) else str(args)
        return f"{part.get('name', '?')}({shown})"
    if kind == "tool_call_response":
        return f"→ {part.get('response', '')}"
    return str(part.get("content", ""))


def _short(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def summary(view: TraceView) -> str:
    """One line of totals: steps, attempts, retries, model calls, tokens, cost, notes."""
    spans = view.walk()
    steps = [s for s in spans if s.name.startswith(f"{S.STEP} ")]
    attempts = [s for s in spans if s.attr(S.STEP_ATTEMPT) is not None]
    models = [s for s in spans if s.attr(S.GENAI_OPERATION) == "chat" and s.kind == "client"]
    tokens_in = sum(int(s.attr(S.GENAI_INPUT_TOKENS, 0) or 0) for s in models)
    tokens_out = sum(int(s.attr(S.GENAI_OUTPUT_TOKENS, 0) or 0) for s in models)
    cost = sum(float(s.attr(S.LLM_COST, 0) or 0) for s in models)
    retries = sum(1 for s in attempts if int(s.attr(S.STEP_ATTEMPT, 1)) > 1)
    notes = sum(1 for s in spans for e in s.events if e.name in (S.NOTE_EVENT, S.DECISION_EVENT))
    return (f"{len(steps)} steps · {len(attempts)} attempts ({retries} retries) · {len(models)} model calls · "
            f"{tokens_in} in / {tokens_out} out tokens · ${cost:.6f}".rstrip("0").rstrip(".")
            + f" · {notes} notes/decisions")
