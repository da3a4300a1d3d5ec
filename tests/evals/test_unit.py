"""Scorers, datasets, configurations and the regression gate, without a server."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from tether.errors import UsageError
from tether.evals import (
    Case,
    CaseResult,
    Contains,
    EvalReport,
    Exact,
    Fields,
    Function,
    Numeric,
    Regex,
    Schema,
    Scored,
    load_cases,
    parse_config,
    parse_scorer,
    regressions,
)
from tether.evals._report import percentile, summarize
from tether.llm import ModelCall
from tether.llm._substitute import for_run

EXPECTED = {"kind": "invoice", "amount": "339.15", "tags": ["a"]}


def scored(output: object, expected: object = EXPECTED, **kw: object) -> Scored:
    return Scored(case=Case(id="x", input={}, expected=expected), output=output, **kw)  # type: ignore[arg-type]


async def test_exact_and_field_scores_compare_numbers_by_value() -> None:
    right = {"kind": "invoice", "amount": 339.15, "tags": ["a"]}
    assert (await Exact().score(scored(right))).value == 1.0  # type: ignore[union-attr]
    wrong = await Fields().score(scored({"kind": "refund", "amount": 339.15, "tags": ["a"], "extra": 1}))
    assert wrong is not None and wrong.fields == {"kind": False, "amount": True, "tags": True}
    assert wrong.value == pytest.approx(2 / 3)
    assert (await Exact().score(scored(right, expected=None))) is None  # nothing to compare with
    assert (await Fields(["amount"]).score(scored(right, failed=True))).value == 0.0  # type: ignore[union-attr]


async def test_schema_numeric_contains_regex_and_function_scorers() -> None:
    class Out(BaseModel):
        kind: str
        amount: float

    assert (await Schema(Out).score(scored({"kind": "x", "amount": 1}))).value == 1.0  # type: ignore[union-attr]
    bad = await Schema().score(scored({"kind": "x"}, output_type=Out))
    assert bad is not None and bad.value == 0.0 and "required" in bad.detail.lower()
    assert (await Numeric("amount", 0.01).score(scored({"amount": 339.155}))).value == 1.0  # type: ignore[union-attr]
    assert (await Numeric("amount", 0.01).score(scored({"amount": 340}))).value == 0.0  # type: ignore[union-attr]
    assert (await Contains("kind").score(scored({"kind": "An INVOICE"}))).value == 1.0  # type: ignore[union-attr]
    assert (await Regex(r"^INV-\d+$", "n").score(scored({"n": "INV-42"}))).value == 1.0  # type: ignore[union-attr]
    half = await Function(lambda out, exp: 0.5 if out["kind"] == exp["kind"] else 0).score(scored({"kind": "invoice"}))
    assert half is not None and half.value == 0.5


def test_scorers_and_configurations_from_the_command_line() -> None:
    assert [parse_scorer(s).name for s in ("exact", "fields", "fields:a,b", "schema", "numeric:total:0.5",
                                           "contains:notes", "regex:ref:^BK-")] == [
        "exact", "fields", "fields(a,b)", "schema", "numeric(total)", "contains(notes)", "regex(ref)"]
    with pytest.raises(UsageError, match="unknown scorer 'fuzzy'"):
        parse_scorer("fuzzy")
    c = parse_config("extract=local:smollm2, mistral:*=scripted:x")
    assert dict(c.models) == {"extract": "local:smollm2", "mistral:*": "scripted:x"}
    assert parse_config("default").label == "default" and parse_config("default").key != c.key
    with pytest.raises(UsageError, match="STEP=MODEL"):
        parse_config("extract")
    with pytest.raises(UsageError, match="expected a model string"):
        parse_config("extract=smollm2")


def test_a_step_override_replaces_the_primary_model_and_a_pattern_every_call() -> None:
    call = ModelCall(model="mistral:large", messages=[], purpose="extract", output_name="Stated")
    assert for_run(call, {"classify": "a:b"}) == "mistral:large"
    assert for_run(call, {"extract.Stated": "a:b"}) == "a:b"
    assert for_run(call.model_copy(update={"fallback": 1}), {"extract": "a:b"}) == "mistral:large"
    assert for_run(call.model_copy(update={"fallback": 1}), {"mistral:*": "a:b"}) == "a:b"


def test_datasets_in_jsonl_and_csv(tmp_path: Path) -> None:
    jl = tmp_path / "c.jsonl"
    jl.write_text('{"id": "a 1", "input": {"x": 1}, "expected": {"y": 2}}\n\n{"input": 3}\n')
    assert [(c.id, c.input, c.expected) for c in load_cases(jl)] == [("a-1", {"x": 1}, {"y": 2}), ("line3", 3, None)]
    cv = tmp_path / "c.csv"
    cv.write_text('id,text,amount,expected.kind\nk1,"hello, you",12.5,invoice\n')
    (case,) = load_cases(cv)
    assert (case.id, case.input, case.expected) == ("k1", {"text": "hello, you", "amount": 12.5}, {"kind": "invoice"})
    jl.write_text('{"id": "a", "input": 1}\n{"id": "a", "input": 2}\n')
    with pytest.raises(UsageError, match="two cases have the id 'a'"):
        load_cases(jl)
    jl.write_text('{"input": 1, "expectd": 2}\n')
    with pytest.raises(UsageError, match=r"c\.jsonl:1: unknown key 'expectd'"):
        load_cases(jl)


def test_the_gate_fails_under_the_floor_and_on_a_drop_from_the_baseline() -> None:
    def report(*scores: float) -> EvalReport:
        cases = [CaseResult(config="m", case=str(i), run_id=f"r{i}", scores={"fields": s}, seconds=i)
                 for i, s in enumerate(scores)]
        return EvalReport(name="n", workflow="w", configs=[summarize("m", {}, cases)], cases=cases)

    base, same, worse = report(1, 1, 0.5), report(1, 0.5, 1), report(1, 0.5, 0.5)
    assert base.configs[0].score == pytest.approx(5 / 6) and base.configs[0].latency_p95 == 2
    assert regressions(same, baseline=base) == []
    assert regressions(worse, baseline=base) == ["m: fields fell from 0.833 to 0.667 (baseline m)"]
    assert regressions(worse, baseline=base, tolerance=0.2) == []
    assert regressions(worse, fail_under=0.9) == ["m: score 0.667 is under 0.9"]
    assert percentile([3, 1, 2, 4], 50) == 2 and percentile([], 95) == 0
