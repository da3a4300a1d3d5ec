"""Evaluations against the real dev server with scripted models: known answers score exactly, an
interrupted evaluation resumes without running finished cases again, the regression gate fails CI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import tether
from tests.apps.eval_flows import read_note, sloppy, slow
from tether.engine.devserver import DevServer
from tether.evals import Exact, Fields, Numeric, Schema, evaluate, load_cases, load_report
from tether.llm import _report as llm_report
from tether.testing import eventually, unique_queue

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CASES = load_cases(HERE / "cases.jsonl")
APP = "tests.apps.eval_flows:read_note"


async def test_an_eval_scores_known_answers_exactly(tether_client: tether.Client, tmp_path: Path) -> None:
    async with tether.Worker(tether_client):
        report = await evaluate(
            tether_client, read_note, CASES, name="exact", results=tmp_path / "cases.jsonl", concurrency=4,
            scorers=[Fields(), Exact(), Schema(), Numeric("amount", 0.5)],
            configs=[{}, {"extract": "scripted:eval-sloppy"}])
    good, bad = report.configs
    assert good.config == "default"
    assert good.scores == {"fields": 1.0, "exact": 1.0, "schema": 1.0, "numeric(amount)": 1.0}
    assert good.fields == {"kind": 1.0, "amount": 1.0, "currency": 1.0}
    assert (good.model_calls, good.repair_rate, good.failure_rate) == (12, 0.0, 0.0)
    assert bad.config == "extract=scripted:eval-sloppy"
    assert bad.fields == {"kind": 1.0, "amount": 0.0, "currency": 1.0}  # every amount is off by one
    assert bad.scores["exact"] == 0.0 and bad.scores["numeric(amount)"] == 0.0 and bad.scores["schema"] == 1.0
    assert abs(bad.scores["fields"] - 2 / 3) < 1e-9
    assert (bad.model_calls, bad.repair_rate) == (13, 1 / 6)  # case c's first reply was invalid, then repaired
    assert bad.input_tokens > 0 and bad.latency_p95 >= bad.latency_p50 > 0
    # the override travelled with the runs: only the extract calls of the second configuration changed model
    case_c = next(r for r in report.cases if r.config == bad.config and r.case == "c")
    detail = await tether_client.get(case_c.run_id).describe()
    models = [c.model for s in detail.steps if (c := llm_report.call_of(s)) is not None]
    assert models == ["scripted:eval-label", "scripted:eval-sloppy", "scripted:eval-sloppy"]
    assert [r.case for r in report.cases] == [c.id for c in CASES] * 2
    assert len([c for c in sloppy.calls if c.purpose == "extract"]) >= 7


async def test_an_interrupted_eval_resumes_without_running_finished_cases_again(
        tether_client: tether.Client, tmp_path: Path) -> None:
    results = tmp_path / "cases.jsonl"
    before = len(slow.calls)

    def run_eval() -> asyncio.Future[tether.evals.EvalReport]:
        return asyncio.ensure_future(evaluate(
            tether_client, read_note, CASES, name="resume", results=results, concurrency=2,
            scorers=[Fields()], configs=[{"extract": "scripted:eval-slow"}]))

    async with tether.Worker(tether_client):
        first = run_eval()
        await eventually(lambda: results.exists() and len(results.read_text().splitlines()) >= 2)
        first.cancel()  # the evaluation stops mid-way; its runs in flight go on in the engine
        with contextlib.suppress(asyncio.CancelledError):
            await first
        recorded = len(results.read_text().splitlines())
        assert 2 <= recorded < len(CASES)
        report = await run_eval()
    assert [r.case for r in report.cases] == [c.id for c in CASES]
    assert report.configs[0].score == 1.0
    assert len(slow.calls) - before == len(CASES)  # each case's extract step ran exactly once
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    assert sorted(x["case"] for x in lines) == [c.id for c in CASES]  # finished cases were not recorded twice


def tether_eval(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tether", "eval", APP, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_the_regression_gate_fails_on_a_worse_model(tether_server: DevServer, tmp_path: Path) -> None:
    where = ["--address", tether_server.address, "--task-queue", unique_queue("eval"),
             "--dataset", str(HERE / "cases.jsonl"), "--state-dir", str(tmp_path)]
    base = tether_eval(*where, "--out", str(tmp_path / "base.json"), "--fail-under", "0.9")
    assert base.returncode == 0, base.stderr
    assert "fields" in base.stdout and "default" in base.stdout and "100%" in base.stdout
    assert load_report(tmp_path / "base.json").configs[0].score == 1.0
    worse = tether_eval(*where, "--models", "extract=scripted:eval-sloppy", "--baseline", str(tmp_path / "base.json"),
                        "--csv", str(tmp_path / "worse.csv"))
    assert worse.returncode == 1, worse.stderr
    assert "regression: extract=scripted:eval-sloppy: exact fell from 1.000 to 0.000" in " ".join(worse.stderr.split())
    assert "score:fields" in (tmp_path / "worse.csv").read_text()
    kept = sorted(p.name for p in (tmp_path / "evals").glob("*.json"))
    assert len(kept) == 2  # each evaluation is kept for Studio under the state dir


def test_a_killed_tether_eval_picks_up_where_it_stopped(tether_server: DevServer, tmp_path: Path) -> None:
    where = ["--address", tether_server.address, "--task-queue", unique_queue("eval"), "--name", "killed",
             "--dataset", str(HERE / "cases.jsonl"), "--state-dir", str(tmp_path), "--concurrency", "2",
             "--models", "extract=scripted:eval-slow"]
    results = tmp_path / "evals" / "killed.cases.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "tether", "eval", APP, *where], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        asyncio.run(eventually(lambda: results.exists() and len(results.read_text().splitlines()) >= 2, timeout=60))
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the evaluation and its worker die at once
        proc.wait()
    finished = {json.loads(x)["case"]: json.loads(x)["run_id"] for x in results.read_text().splitlines()}
    assert 2 <= len(finished) < len(CASES)
    again = tether_eval(*where)
    assert again.returncode == 0, again.stderr
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    assert sorted(x["case"] for x in lines) == [c.id for c in CASES]  # the finished cases were not run again
    assert all(x["scores"]["fields"] == 1.0 for x in lines)
    assert {x["case"]: x["run_id"] for x in lines if x["case"] in finished} == finished


async def test_a_case_that_asks_a_person_is_escalated_not_scored(tether_client: tether.Client,
                                                                 tmp_path: Path) -> None:
    from tests.apps.eval_flows import Note, read_or_ask
    from tether.evals import Case

    cases = [Case(id="sure", input=Note(text="invoice 12 EUR").model_dump(),
                  expected={"kind": "invoice", "amount": 12.0, "currency": "EUR"}),
             Case(id="unsure", input=Note(text="unsure: 7 USD").model_dump(),
                  expected={"kind": "invoice", "amount": 7.0, "currency": "USD"})]
    async with tether.Worker(tether_client):
        report = await asyncio.wait_for(evaluate(tether_client, read_or_ask, cases, name="asks", results=None,
                                                 scorers=[Fields()], configs=[{}]), 60)
    sure, unsure = report.cases
    assert (sure.status, sure.scores["fields"]) == ("completed", 1.0)
    assert unsure.status == "escalated" and unsure.scores == {} and unsure.human_tasks == 1
    assert report.configs[0].escalation_rate == 0.5
    assert (await tether_client.get(unsure.run_id).describe()).status == "cancelled"
