"""What Studio's pages show: runs with cost and open tasks, a run's story, figures over runs.

Runs in the Studio server. Runs, steps, prompts and answers come from Temporal through
the client (decrypted locally by its payload codec); tool calls, egress blocks and the
figures come from the local span store (`.tether/traces.db`) when there is one.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tether import budget
from tether._labels import step_label
from tether.engine.client import Client, RunDetail, RunSummary
from tether.engine.recent_runs import RecentRuns
from tether.engine.records import StepRecord
from tether.errors import EgressBlocked
from tether.llm import _report as llm_report
from tether.llm._types import Message, RunUsage, ToolCall
from tether.observe import _spans as S
from tether.observe import _stats
from tether.observe._store import SpanStore, StoredSpan
from tether.observe._tree import part_text


@dataclass
class RunRow:
    """A line of the runs page."""

    run: RunSummary
    cost: float | None = None
    model_calls: int = 0

    @property
    def seconds(self) -> float | None:
        """How long it ran (so far, while running)."""
        if self.run.started_at is None:
            return None
        end = self.run.closed_at or datetime.now(UTC)
        return (end - self.run.started_at).total_seconds()


async def list_runs(recent: RecentRuns, store: SpanStore | None, *, workflow: str | None, status: str | None,
                    search: str | None, limit: int) -> list[RunRow]:
    """The most recent runs with their model cost (from the span store, when there is one)."""
    found = await recent.list_runs(workflow=workflow or None, status=status or None, limit=limit,
                                   id_prefix=search or None)
    usage = run_costs(store, [r.id for r in found]) if store is not None else {}
    return [RunRow(r, *usage.get(r.id, (None, 0))) for r in found]


def run_costs(store: SpanStore, run_ids: list[str]) -> dict[str, tuple[float, int]]:
    """(cost in USD, model calls) per run, from the model-call spans in the store."""
    if not run_ids or not store.exists:
        return {}
    out: dict[str, tuple[float, int]] = {}
    db = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True, timeout=5)
    try:
        for i in range(0, len(run_ids), 500):
            chunk = run_ids[i:i + 500]
            rows = db.execute(
                "SELECT run_id, SUM(COALESCE(json_extract(attributes, '$.\"tether.llm.cost_usd\"'), 0)), COUNT(*) "
                f"FROM spans WHERE kind = 'client' AND run_id IN ({','.join('?' * len(chunk))}) "
                "AND json_extract(attributes, '$.\"gen_ai.operation.name\"') = 'chat' GROUP BY run_id", chunk)
            out.update({r[0]: (float(r[1] or 0), int(r[2])) for r in rows})
    except sqlite3.DatabaseError:
        return {}  # a store being created or from another version: the page shows "-"
    finally:
        db.close()
    return out


# ---- one run ------------------------------------------------------------------------------


@dataclass
class ModelCallView:
    """One model call of a run (one attempt of the model step): what was asked and answered."""

    n: int
    step: StepRecord
    model: str
    label: str
    round: str
    reason: str | None
    messages: list[Message]
    output_name: str | None
    response: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost: float | None
    seconds: float | None
    finish_reason: str | None


@dataclass
class TimelineRow:
    """A row of the run's timeline: a step, sleep, child run, human task or note."""

    n: int
    step: StepRecord
    label: str
    start: float  # share of the run's duration before it started
    length: float  # share of the run's duration it took
    model_call: int | None = None  # its number among the model calls


@dataclass
class RunView:
    """Everything the run page shows."""

    detail: RunDetail
    rows: list[TimelineRow]
    model_calls: list[ModelCallView]
    usage: RunUsage
    notes: list[StepRecord]
    tasks: list[StepRecord]
    children: list[StepRecord]
    tools: list[StoredSpan] = field(default_factory=list)
    egress: list[StoredSpan] = field(default_factory=list)
    egress_errors: list[StepRecord] = field(default_factory=list)
    trace_stored: bool = False
    store_known: bool = False
    budget_line: str | None = None  # e.g. "budget: model calls 2 of 40 · cost $0.0120 of $0.50"

    @property
    def seconds(self) -> float | None:
        """The run's duration (so far)."""
        d = self.detail
        if d.started_at is None:
            return None
        return ((d.closed_at or datetime.now(UTC)) - d.started_at).total_seconds()


async def run_view(client: Client, store: SpanStore | None, run_id: str) -> RunView:
    """Read run `run_id` (history and, when stored, its spans) for the run page."""
    detail = await client.get(run_id).describe()
    calls = _model_calls(detail.steps)
    by_step = {id(c.step): c.n for c in calls}
    view = RunView(detail=detail, rows=_timeline(detail, by_step), model_calls=calls,
                   usage=llm_report.run_usage(detail.steps),
                   notes=[s for s in detail.steps if s.kind == "note"],
                   tasks=[s for s in detail.steps if s.kind == "human"],
                   children=[s for s in detail.steps if s.kind == "child"],
                   egress_errors=[s for s in detail.steps if s.error_type == EgressBlocked.__name__],
                   store_known=store is not None and store.exists)
    if detail.budget:
        u = view.usage
        used = budget.usage_of(u.calls, u.input_tokens + u.output_tokens, u.cost, detail.spent)
        view.budget_line = budget.budget_line(detail.budget, used)
    if view.store_known and store is not None:
        spans = store.run_spans(run_id)
        view.trace_stored = bool(spans)
        view.tools = [s for s in spans if s.name.startswith(f"{S.TOOL} ")]
        view.egress = [s for s in spans if s.name == S.EGRESS]
    return view


def _model_calls(steps: list[StepRecord]) -> list[ModelCallView]:
    out: list[ModelCallView] = []
    for s in steps:
        call = llm_report.call_of(s)
        if call is None:
            continue
        reply = llm_report.reply_of(s)
        what = f"structured {call.output_name}" if call.purpose == "structured" else call.purpose
        out.append(ModelCallView(
            n=len(out) + 1, step=s, model=call.model, label=what, round=call.round_label, reason=call.reason,
            messages=[_readable(m) for m in call.messages], output_name=call.output_name,
            response=(reply.text or _calls_text(reply.tool_calls)) if reply else None,
            input_tokens=reply.usage.input_tokens if reply else None,
            output_tokens=reply.usage.output_tokens if reply else None,
            cost=reply.cost if reply else None,
            seconds=reply.seconds if reply and reply.seconds else s.duration,
            finish_reason=reply.finish_reason if reply else None))
    return out


def _calls_text(calls: list[ToolCall] | None) -> str:
    """A model's tool calls as people read them: `find_order(order_id="A-1")`, one per line."""
    return "\n".join(part_text(p) for p in S.tool_call_parts(calls))


def _readable(m: Message) -> Message:
    """A message whose tool calls show (an assistant turn that only called tools has no text)."""
    if m.tool_calls and not m.content:
        return m.model_copy(update={"content": _calls_text(m.tool_calls)})
    return m


def _timeline(detail: RunDetail, by_step: dict[int, int]) -> list[TimelineRow]:
    start = detail.started_at
    end = detail.closed_at or datetime.now(UTC)
    total = max((end - start).total_seconds(), 1e-6) if start else 1.0
    rows = []
    for i, s in enumerate(detail.steps, 1):
        label = step_label(s) if s.kind == "step" else s.name
        at = (s.scheduled_at - start).total_seconds() / total if (s.scheduled_at and start) else 0.0
        stop = s.ended_at or (end if s.status in ("running", "retrying", "scheduled", "waiting") else s.scheduled_at)
        length = ((stop - s.scheduled_at).total_seconds() / total) if (stop and s.scheduled_at) else 0.0
        rows.append(TimelineRow(n=i, step=s, label=label, start=at, length=length, model_call=by_step.get(id(s))))
    return rows


# ---- figures over runs -----------------------------------------------------------------------


@dataclass
class DayFigures:
    """Tokens and cost of each workflow on each day."""

    days: list[str]
    tokens: dict[str, list[float]]
    cost: dict[str, list[float]]


@dataclass
class Figures:
    """The metrics page: `tether stats` figures plus tokens and cost per workflow per day."""

    stats: _stats.Stats
    per_day: DayFigures
    window: str


def figures(store: SpanStore, *, days: int) -> Figures:
    """Figures over the spans of the last `days` days."""
    since = datetime.now(UTC).timestamp() - days * 86400
    spans = store.since(int(since * 1e9)) if store.exists else []
    return Figures(stats=_stats.compute(spans), per_day=_per_day(spans, days), window=f"{days}d")


def _per_day(spans: list[StoredSpan], days: int) -> DayFigures:
    models = [s for s in spans if s.attr(S.GENAI_OPERATION) == "chat" and s.kind == "client"]
    today = datetime.now(UTC).astimezone().date()
    labels = [(today.fromordinal(today.toordinal() - k)).isoformat() for k in range(days - 1, -1, -1)]
    index = {d: i for i, d in enumerate(labels)}
    tokens: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(labels))
    cost: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(labels))
    for s in models:
        day = datetime.fromtimestamp(s.start_ns / 1e9, UTC).astimezone().date().isoformat()
        if day not in index:
            continue
        wf = str(s.attr(S.WORKFLOW) or "?")
        tokens[wf][index[day]] += int(s.attr(S.GENAI_INPUT_TOKENS, 0) or 0) + int(s.attr(S.GENAI_OUTPUT_TOKENS, 0) or 0)
        cost[wf][index[day]] += float(s.attr(S.LLM_COST, 0) or 0)
    return DayFigures(days=labels, tokens=dict(tokens), cost=dict(cost))

