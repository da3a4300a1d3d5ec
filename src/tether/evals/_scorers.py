"""Scorers: how close a run's output is to the case's expected output, as a number from 0 to 1.

Run in the process that drives an evaluation, after each case's run has finished; the LLM
judge makes its model call from here (a direct call, not a step of the evaluated run).
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from tether import llm
from tether.engine.app import load_app
from tether.errors import UsageError
from tether.evals._dataset import Case
from tether.llm._spec import parse_model


@dataclass
class Score:
    """One scorer's verdict on one case.

    Attributes:
        value: 0 (wrong) to 1 (right).
        fields: For field-level scorers, whether each field matched.
        detail: Why, in a few words (a mismatch, the judge's reason).
    """

    value: float
    fields: dict[str, bool] = field(default_factory=dict)
    detail: str = ""


@dataclass
class Scored:
    """What a scorer is given: the case, the run's output (JSON-like data; None if the run
    failed) and the workflow's declared output type."""

    case: Case
    output: Any
    output_type: Any = None
    failed: bool = False

    @property
    def expected(self) -> Any:
        """The case's expected output."""
        return self.case.expected


class Scorer(Protocol):
    """Anything with a `name` and an async `score(scored)` returning a `Score`, or None when it
    does not apply to the case (e.g. it has no expected output)."""

    name: str

    async def score(self, scored: Scored) -> Score | None: ...


def same(a: Any, b: Any) -> bool:
    """Equal as JSON data, numbers compared by value ("339.15" == 339.15, 1 == 1.0)."""
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return math.isclose(na, nb, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


def pick(value: Any, path: str) -> Any:
    """The field at a dotted `path` of JSON-like data (`lines.0.total`); None when absent."""
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


class Exact:
    """1 when the output equals the expected output (as JSON data, numbers by value)."""

    name = "exact"

    async def score(self, scored: Scored) -> Score | None:
        if scored.expected is None:
            return None
        return Score(1.0 if same(scored.output, scored.expected) else 0.0)


class Fields:
    """The share of fields that match: every field of the expected output, or the `fields` named
    (dotted paths allowed). The report gives each field's accuracy as well.

    Example:
        >>> Fields(["approved", "category"])
    """

    def __init__(self, fields: Sequence[str] | None = None) -> None:
        self.fields = list(fields) if fields else None
        self.name = "fields" if not fields else f"fields({','.join(fields)})"

    async def score(self, scored: Scored) -> Score | None:
        exp = scored.expected
        names = self.fields or (list(exp) if isinstance(exp, dict) else [])
        if not names:
            return None
        hits = {n: (not scored.failed) and same(pick(scored.output, n), pick(exp, n)) for n in names}
        return Score(sum(hits.values()) / len(hits), fields=hits)


class Schema:
    """1 when the output validates against `output_type` (default: the workflow's return type)."""

    name = "schema"

    def __init__(self, output_type: Any = None) -> None:
        self.output_type = output_type

    async def score(self, scored: Scored) -> Score | None:
        kind = self.output_type or scored.output_type
        if kind is None or scored.failed:
            return Score(0.0, detail="the run failed") if scored.failed else None
        try:
            TypeAdapter(kind).validate_python(scored.output)
        except ValidationError as exc:
            return Score(0.0, detail=str(exc.errors(include_url=False)[0]["msg"]))
        return Score(1.0)


class Numeric:
    """1 when the number at `field` is within `tolerance` of the expected one (`relative`: a share of it)."""

    def __init__(self, field: str, tolerance: float = 0.01, *, relative: bool = False) -> None:
        self.field, self.tolerance, self.relative = field, tolerance, relative
        self.name = f"numeric({field})"

    async def score(self, scored: Scored) -> Score | None:
        want = _number(pick(scored.expected, self.field))
        if want is None:
            return None
        got = _number(pick(scored.output, self.field))
        limit = self.tolerance * abs(want) if self.relative else self.tolerance
        ok = got is not None and abs(got - want) <= limit
        return Score(1.0 if ok else 0.0, detail="" if ok else f"{got} vs {want}")


class Contains:
    """1 when the output's `field` (or the whole output as JSON text) contains `text`, or the
    expected value of the same field when no text is given; case-insensitive by default."""

    def __init__(self, field: str | None = None, text: str | None = None, *, ignore_case: bool = True) -> None:
        self.field, self.text, self.ignore_case = field, text, ignore_case
        self.name = f"contains({field or text or 'expected'})"

    async def score(self, scored: Scored) -> Score | None:
        want = self.text if self.text is not None else pick(scored.expected, self.field) if self.field else None
        if want is None:
            return None
        hay = _text(pick(scored.output, self.field) if self.field else scored.output)
        needle = _text(want)
        if self.ignore_case:
            hay, needle = hay.lower(), needle.lower()
        return Score(1.0 if needle in hay else 0.0)


class Regex:
    """1 when `pattern` matches somewhere in the output's `field` (or the whole output as JSON text)."""

    def __init__(self, pattern: str, field: str | None = None) -> None:
        try:
            self.pattern = re.compile(pattern)
        except re.error as exc:
            raise UsageError(f"regex scorer: {pattern!r} is not a valid pattern: {exc}") from None
        self.field = field
        self.name = f"regex({field or pattern})"

    async def score(self, scored: Scored) -> Score | None:
        if scored.failed:
            return Score(0.0)
        hay = _text(pick(scored.output, self.field) if self.field else scored.output)
        return Score(1.0 if self.pattern.search(hay) else 0.0)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


ScoreFn = Callable[[Any, Any], Any]
"""`fn(output, expected)` returning (or awaiting to) a bool, a number from 0 to 1, a `Score` or None."""


class Function:
    """Your own check: `fn(output, expected)` (sync or async) returning a bool, a number 0-1 or a `Score`.

    Example:
        >>> Function(lambda out, exp: out["total"] > 0, name="positive")
    """

    def __init__(self, fn: ScoreFn, name: str | None = None) -> None:
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", "function"))

    async def score(self, scored: Scored) -> Score | None:
        got = self.fn(scored.output, scored.expected)
        if inspect.isawaitable(got):
            got = await got
        if got is None or isinstance(got, Score):
            return got
        return Score(max(0.0, min(1.0, float(got))))


class Verdict(BaseModel):
    """An LLM judge's answer."""

    score: float = Field(ge=0, le=1, description="1 if the output is correct and complete, 0 if wrong")
    reason: str = Field(max_length=300, description="why, in one sentence")


JUDGE_PROMPT = ("You grade the output of an automated process against the expected output.\n"
                "{criteria}\nInput:\n{input}\n\nExpected output:\n{expected}\n\nActual output:\n{output}\n")


class Judge:
    """An LLM judge: `model` (any model string) grades the output against the expected one from 0 to 1.

    Example:
        >>> Judge("mistral:mistral-large-latest", criteria="The category must match; notes may differ.")
    """

    def __init__(self, model: str, *, criteria: str = "Judge whether the actual output means the same as the "
                 "expected output.") -> None:
        parse_model(model)
        self.model, self.criteria = model, criteria
        self.name = f"judge({model})"

    async def score(self, scored: Scored) -> Score | None:
        if scored.failed:
            return Score(0.0, detail="the run failed")
        prompt = JUDGE_PROMPT.format(criteria=self.criteria, input=_text(scored.case.input),
                                     expected=_text(scored.expected), output=_text(scored.output))
        verdict = await llm.structured(Verdict, prompt, model=self.model, temperature=0.0)
        return Score(verdict.score, detail=verdict.reason)


def parse_scorer(spec: str) -> Scorer:
    """A scorer from its command-line form.

    Forms: `exact`, `fields`, `fields:a,b.c`, `schema`, `numeric:FIELD[:TOLERANCE]`,
    `contains:FIELD`, `regex:FIELD:PATTERN`, `judge:MODEL`, `python:MODULE_OR_FILE:FUNCTION`.

    Raises:
        UsageError: The form is unknown or incomplete.
    """
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "exact" and not rest:
        return Exact()
    if kind == "fields":
        return Fields([f for f in rest.split(",") if f.strip()] or None)
    if kind == "schema" and not rest:
        return Schema()
    if kind == "numeric" and rest:
        name, _, tol = rest.partition(":")
        return Numeric(name, float(tol) if tol else 0.01)
    if kind == "contains" and rest:
        return Contains(rest)
    if kind == "regex" and ":" in rest:
        name, _, pattern = rest.partition(":")
        return Regex(pattern, name or None)
    if kind == "judge" and rest:
        return Judge(rest)
    if kind == "python" and ":" in rest:
        return _python(*rest.rsplit(":", 1))
    raise UsageError(f"unknown scorer {spec!r}; use exact, fields[:a,b], schema, numeric:FIELD[:TOL], "
                     "contains:FIELD, regex:FIELD:PATTERN, judge:MODEL or python:MODULE:FUNCTION")


def _python(module: str, name: str) -> Scorer:
    mod = load_app(module).module  # a dotted module or a .py file; refused in one line if it cannot load
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise UsageError(f"python scorer: {module!r} has no function {name!r}")
    return Function(fn, name)
