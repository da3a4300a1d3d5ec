"""Budgets per run: a ceiling on model cost, tokens, model calls and tool calls.

`@tether.workflow(budget=tether.Budget(max_cost_usd=0.50, max_model_calls=40))` checks the
run's spending before each model call and each agent tool call: the call that would go
over never reaches the provider or the tool, and the run gets `BudgetExceeded` naming the
limit and the usage, or, with `on_exceed=tether.escalate(...)`, a person may raise the
budget or stop the run. A child run spends from its parent's budget (it gets what the
parent has left, and what it spent is counted in the parent). `tether.Agent(budget=...)`
bounds one agent's work the same way, inside the run's budget.

Costs and tokens are only known after a call, so those two limits stop the first call made
once they are reached; the call counts are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from tether import _runtime
from tether.errors import BudgetExceeded, UsageError

if TYPE_CHECKING:
    from tether.escalation import Escalation

RUN_KEY = "tether.budget"
"""Key of a run's budget state in its run state."""
MEMO_LIMITS = "tether.budget"
"""Memo key of a run's limits (read by `tether show`, Studio and child runs' parents)."""
MEMO_USAGE = "tether.budget.used"
"""Memo key of what a run spent (written when it ends; read by its parent)."""
INHERITED = "tether.budget.inherited"
"""Memo key of the limits a child run starts with (what its parent had left)."""

Limit = Literal["max_cost_usd", "max_tokens", "max_model_calls", "max_tool_calls"]
_WHAT: dict[str, str] = {"max_cost_usd": "cost (USD)", "max_tokens": "tokens", "max_model_calls": "model calls",
                         "max_tool_calls": "tool calls"}


@dataclass(frozen=True)
class Budget:
    """Limits on what one run (or one agent) may spend; None leaves a limit unset.

    Attributes:
        max_cost_usd: Model cost in US dollars (priced models only).
        max_tokens: Input plus output tokens of all model calls.
        max_model_calls: Model calls (each repair or fallback ask is a call).
        max_tool_calls: Tool calls made by agents.
        on_exceed: `tether.escalate(...)` to ask a person to raise the budget or stop the
            run; None fails the run with `BudgetExceeded`.

    Example:
        >>> @tether.workflow(budget=tether.Budget(max_cost_usd=0.50, max_model_calls=40))
        ... async def triage(ticket: Ticket) -> Triage: ...
    """

    max_cost_usd: float | None = None
    max_tokens: int | None = None
    max_model_calls: int | None = None
    max_tool_calls: int | None = None
    on_exceed: Escalation | None = None

    def __post_init__(self) -> None:
        for name in _WHAT:
            _check_limit(name, getattr(self, name))
        if all(getattr(self, name) is None for name in _WHAT):
            raise UsageError("Budget needs at least one limit, e.g. Budget(max_cost_usd=0.50) or "
                             "Budget(max_model_calls=40)")
        from tether.escalation import Escalation

        if self.on_exceed is not None and not isinstance(self.on_exceed, Escalation):
            raise UsageError(f"Budget(on_exceed=...) takes tether.escalate(...), got {self.on_exceed!r}")

    def limits(self) -> dict[str, float | int]:
        """The limits that are set, by name."""
        return {name: getattr(self, name) for name in _WHAT if getattr(self, name) is not None}


def _check_limit(name: str, value: Any) -> None:
    if value is None:
        return
    whole = name != "max_cost_usd"
    if isinstance(value, bool) or not isinstance(value, int if whole else int | float):
        kind = "a whole number" if whole else "a number of dollars"
        raise UsageError(f"Budget({name}=...) takes {kind}, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"Budget({name}=...) must be positive, got {value!r}")


class Usage(BaseModel):
    """What a run (or an agent) has spent so far."""

    cost_usd: float = 0.0
    tokens: int = 0
    model_calls: int = 0
    tool_calls: int = 0

    def plus(self, other: Usage) -> Usage:
        """The sum of two usages."""
        return Usage(cost_usd=self.cost_usd + other.cost_usd, tokens=self.tokens + other.tokens,
                     model_calls=self.model_calls + other.model_calls, tool_calls=self.tool_calls + other.tool_calls)

    def of(self, limit: str) -> float | int:
        """The figure a limit bounds."""
        return {"max_cost_usd": self.cost_usd, "max_tokens": self.tokens, "max_model_calls": self.model_calls,
                "max_tool_calls": self.tool_calls}[limit]


@dataclass
class Ledger:
    """A budget being spent: its current limits (raised by a person, narrowed by a parent) and usage."""

    budget: Budget
    limits: dict[str, float | int]
    used: Usage = field(default_factory=Usage)
    owner: str = "run"
    raises: int = 0  # times a person raised it

    def most_used(self) -> tuple[str, float]:
        """The limit closest to spent and the share of it used (1.0: all of it), e.g.
        ("max_model_calls", 0.5); ("", 0.0) without limits."""
        shares = {name: (self.used.of(name) / limit if limit > 0 else 1.0) for name, limit in self.limits.items()}
        if not shares:
            return "", 0.0
        name = max(shares, key=lambda n: shares[n])
        return name, shares[name]

    def over(self, kind: Literal["model", "tool"]) -> str | None:
        """The limit one more call of `kind` would break, if any."""
        for name, limit in self.limits.items():
            if name == "max_model_calls" and kind == "model" and self.used.model_calls + 1 > limit:
                return name
            if name == "max_tool_calls" and kind == "tool" and self.used.tool_calls + 1 > limit:
                return name
            if name in ("max_cost_usd", "max_tokens") and kind == "model" and self.used.of(name) >= limit:
                return name
        return None

    def remaining(self) -> dict[str, float | int]:
        """What is left of each limit (for a child run)."""
        return {name: max(limit - self.used.of(name), 0) for name, limit in self.limits.items()}

    def describe(self, name: str) -> str:
        """E.g. "model calls: 2 used of 2"."""
        used, limit = self.used.of(name), self.limits[name]
        shown = (f"${used:.4f} used of ${limit:.2f}" if name == "max_cost_usd" else f"{used} used of {limit}")
        return f"{_WHAT[name]}: {shown}"


def budget_line(limits: dict[str, Any], used: Usage) -> str:
    """One line of a run's budget, e.g. "budget: model calls 2 of 40 · cost $0.0120 of $0.50"."""
    parts = []
    for name in _WHAT:
        if name in limits:
            limit, spent = limits[name], used.of(name)
            parts.append(f"cost ${spent:.4f} of ${limit:.2f}" if name == "max_cost_usd"
                         else f"{_WHAT[name]} {spent} of {limit}")
    return "budget: " + " · ".join(parts)


def usage_of(model_calls: int, tokens: int, cost: float, spent: Any = None) -> Usage:
    """What a run spent: as it recorded when it ended (`spent`, children included), else its
    own model calls so far."""
    if isinstance(spent, dict):
        return Usage.model_validate(spent)
    return Usage(cost_usd=cost, tokens=tokens, model_calls=model_calls)


# ---- the run's ledger -------------------------------------------------------------------


def start_run(budget: Budget | None) -> None:
    """Open the run's ledger from its workflow's budget and what a parent run passed down."""
    rt = _runtime.current()
    inherited = rt.memo_value(INHERITED)
    if budget is None and not isinstance(inherited, dict):
        return
    base = budget or Budget(**{k: v for k, v in inherited.items() if k in _WHAT})
    limits = dict(base.limits())
    if isinstance(inherited, dict):  # never more than the parent had left
        for name, left in inherited.items():
            if name in _WHAT and isinstance(left, int | float):
                limits[name] = min(limits.get(name, left), left)
    rt.run_state()[RUN_KEY] = Ledger(base, limits)
    if rt.memo_value(MEMO_LIMITS) != limits:  # narrowed by a parent (the client wrote the workflow's own)
        rt.upsert_memo({MEMO_LIMITS: limits})


def end_run() -> None:
    """Record what the run spent, where its history alone cannot say: for its parent (a child
    run), and when agents' tool calls count against it."""
    ledger = current()
    rt = _runtime.current()
    if ledger is not None and (rt.memo_value(INHERITED) is not None or "max_tool_calls" in ledger.limits):
        rt.upsert_memo({MEMO_USAGE: ledger.used.model_dump()})


def current() -> Ledger | None:
    """The running workflow's ledger, if it has a budget."""
    rt = _runtime.current()
    if not rt.in_run():
        return None
    found: Ledger | None = rt.run_state().get(RUN_KEY)
    return found


async def before_model_call(agent: Ledger | None = None) -> None:
    """Refuse (or escalate) a model call that would go over the run's or the agent's budget."""
    for ledger in (current(), agent):
        if ledger is not None:
            await _check(ledger, "model")


async def before_tool_call(agent: Ledger | None = None) -> None:
    """Refuse (or escalate) an agent's tool call that would go over a budget, then count it."""
    ledgers = [x for x in (current(), agent) if x is not None]
    for ledger in ledgers:
        await _check(ledger, "tool")
    for ledger in ledgers:
        ledger.used.tool_calls += 1


def after_model_call(cost: float | None, tokens: int, agent: Ledger | None = None) -> None:
    """Count a model call's reply."""
    for ledger in (current(), agent):
        if ledger is not None:
            used = ledger.used
            used.cost_usd += cost or 0.0
            used.tokens += tokens
            used.model_calls += 1


def child_spent(used: dict[str, Any] | None) -> None:
    """Count what a child run spent in this run's ledger."""
    ledger = current()
    if ledger is not None and used:
        ledger.used = ledger.used.plus(Usage.model_validate(used))


def for_child() -> dict[str, float | int] | None:
    """The limits a child run starts with: what this run has left (None without a budget)."""
    ledger = current()
    return ledger.remaining() if ledger is not None else None


def agent_ledger(budget: Budget | None, name: str) -> Ledger | None:
    """A ledger for one agent run's own budget."""
    return Ledger(budget, dict(budget.limits()), owner=f"agent {name!r}") if budget is not None else None


async def _check(ledger: Ledger, kind: Literal["model", "tool"]) -> None:
    while (name := ledger.over(kind)) is not None:
        if ledger.budget.on_exceed is None or not _runtime.current().in_workflow():
            raise _exceeded(ledger, name)
        await _ask_to_raise(ledger, name)


def _exceeded(ledger: Ledger, name: str) -> BudgetExceeded:
    what = "model call" if name != "max_tool_calls" else "tool call"
    return BudgetExceeded(f"the {ledger.owner}'s budget is spent: {ledger.describe(name)}; the {what} was not made "
                          f"(raise Budget({name}=...) or add on_exceed=tether.escalate())",
                          limit=name, limit_value=ledger.limits[name], used=ledger.used.model_dump())


class RaiseBudget(BaseModel):
    """Answer to a spent budget: go on with these limits (those left out stay as they are)."""

    action: Literal["raise"]
    max_cost_usd: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    max_model_calls: int | None = Field(default=None, gt=0)
    max_tool_calls: int | None = Field(default=None, gt=0)


class StopRun(BaseModel):
    """Answer to a spent budget: stop the run."""

    action: Literal["stop"]
    reason: str = Field(default="stopped by a person", min_length=1)


async def _ask_to_raise(ledger: Ledger, name: str) -> None:
    from typing import Annotated

    from tether.human import NO_DEFAULT, _ask

    policy = ledger.budget.on_exceed
    assert policy is not None
    question = policy.question or (f"The {ledger.owner}'s budget is spent ({ledger.describe(name)}). "
                                   "Raise it, or stop the run?")
    schema = Annotated[RaiseBudget | StopRun, Field(discriminator="action")]
    answer = await _ask(question, kind="escalation", schema=schema, timeout=policy.timeout,
                        assignee=policy.assignee, on_timeout=NO_DEFAULT,
                        context={"limit": name, "limits": ledger.limits, "used": ledger.used.model_dump()})
    if isinstance(answer, StopRun):
        error = _exceeded(ledger, name)
        error.args = (f"{error}; a person stopped the run: {answer.reason}",)
        raise error
    raised = {k: v for k, v in answer.model_dump(exclude={"action"}).items() if v is not None}
    if not raised:
        raised = {name: ledger.limits[name] * 2}  # "raise" with no figures: double the spent limit
    ledger.limits.update(raised)
    ledger.raises += 1
    if ledger.owner == "run":
        _runtime.current().upsert_memo({MEMO_LIMITS: ledger.limits})


__all__ = ["Budget", "Ledger", "RaiseBudget", "StopRun", "Usage"]
