"""Budgets per run: the call that would go over never reaches the model, and people can raise them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

import tether
from tests.apps import budget_flows as app
from tether import observe
from tether._render import print_run
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.observe._setup import STORE_FILE
from tether.observe._store import SqliteSpanExporter
from tether.studio.data import run_view
from tether.testing import ChatServer, chat_reply, eventually, unique_queue


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    with ChatServer(default=chat_reply("an answer")) as server:
        yield server


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


async def test_a_third_model_call_under_a_budget_of_two_is_never_made(tether_client: tether.Client,
                                                                      chat_server: ChatServer) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.two_calls_allowed, app.Asks(model=chat_server.model(), times=3))
        with pytest.raises(tether.RunFailed) as info:
            await run.result(timeout=60)
        detail = await run.describe()
    assert info.value.error_type == "BudgetExceeded"
    assert "model calls: 2 used of 2" in str(info.value)
    assert len(chat_server.requests) == 2  # the third call never reached the model
    assert detail.budget == {"max_model_calls": 2}  # from the start memo; the use from the run's model steps
    shown = Console(record=True, width=200)
    print_run(shown, detail)  # what `tether show` prints
    assert "budget: model calls 2 of 2" in shown.export_text()
    page = await run_view(tether_client, None, run.id)  # what Studio's run page shows
    assert page.budget_line == "budget: model calls 2 of 2"


async def test_within_budget_the_run_completes(tether_client: tether.Client, chat_server: ChatServer) -> None:
    async with tether.Worker(tether_client):
        out = await tether_client.run(app.two_calls_allowed, app.Asks(model=chat_server.model(), times=2))
    assert out == ["an answer", "an answer"] and len(chat_server.requests) == 2


async def test_a_person_raises_the_budget_and_the_run_goes_on(tether_client: tether.Client,
                                                              chat_server: ChatServer) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.ask_to_spend_more, app.Asks(model=chat_server.model(), times=3))
        task = await tether_client.tasks.wait(run.id, timeout=60)
        assert len(chat_server.requests) == 2  # waiting for a person, the third call not made
        assert task.assignee == "finance" and "model calls: 2 used of 2" in task.question
        await tether_client.tasks.answer(task.id, {"action": "raise", "max_model_calls": 5}, by="cfo")
        assert await run.result(timeout=60) == ["an answer"] * 3
    assert len(chat_server.requests) == 3


async def test_a_person_may_stop_the_run_instead(tether_client: tether.Client, chat_server: ChatServer) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.ask_to_spend_more, app.Asks(model=chat_server.model(), times=3))
        task = await tether_client.tasks.wait(run.id, timeout=60)
        await tether_client.tasks.answer(task.id, {"action": "stop", "reason": "not worth it"}, by="cfo")
        with pytest.raises(tether.RunFailed) as info:
            await run.result(timeout=60)
    assert info.value.error_type == "BudgetExceeded" and "not worth it" in str(info.value)
    assert len(chat_server.requests) == 2


async def test_a_child_run_gets_only_what_its_parent_has_left(tether_client: tether.Client,
                                                              chat_server: ChatServer) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.parent_with_child, app.Asks(model=chat_server.model(), times=2))
        with pytest.raises(tether.RunFailed) as info:
            await run.result(timeout=60)
    assert info.value.error_type == "BudgetExceeded"
    assert len(chat_server.requests) == 3  # 2 by the parent, 1 by the child, the child's 2nd refused


async def test_what_a_child_spent_counts_in_its_parent(tether_client: tether.Client, chat_server: ChatServer) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.parent_then_more, app.Asks(model=chat_server.model(), times=3))
        with pytest.raises(tether.RunFailed) as info:
            await run.result(timeout=60)
    assert info.value.error_type == "BudgetExceeded" and "model calls: 4 used of 4" in str(info.value)
    assert len(chat_server.requests) == 4


async def test_an_agent_tool_call_over_the_budget_is_not_made(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.agent_with_tools, app.Asks(model="unused", times=1))
        with pytest.raises(tether.RunFailed) as info:
            await run.result(timeout=60)
        detail = await run.describe()
    assert info.value.error_type == "BudgetExceeded" and "tool calls: 1 used of 1" in str(info.value)
    assert [s.input for s in detail.steps if s.name == "lookup"] == [["k0"]]


async def test_an_agent_keeps_its_own_budget(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.agent_with_own_budget, app.Asks(model="unused", times=1))
        with pytest.raises(tether.RunFailed) as info:
            await run.result(timeout=60)
        detail = await run.describe()
    assert info.value.error_type == "BudgetExceeded"
    assert "agent 'thrifty'" in str(info.value) and "model calls: 2 used of 2" in str(info.value)
    assert sum(1 for s in detail.steps if s.name == "tether.llm") == 2


@pytest.mark.parametrize("kwargs, message", [
    ({}, "at least one limit"),
    ({"max_model_calls": 0}, "must be positive"),
    ({"max_tokens": -5}, "must be positive"),
    ({"max_cost_usd": float("nan")}, "must be positive"),
    ({"max_tool_calls": 2.5}, "whole number"),
    ({"max_cost_usd": "1"}, "number of dollars"),
    ({"max_model_calls": True}, "whole number"),
    ({"max_model_calls": 3, "on_exceed": "ask"}, "tether.escalate"),
])
def test_bad_budgets_are_one_line(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(tether.UsageError) as info:
        tether.Budget(**kwargs)  # type: ignore[arg-type]
    assert message in one_line(info.value)


def test_a_workflow_budget_must_be_a_budget() -> None:
    with pytest.raises(tether.UsageError, match=r"tether\.Budget"):
        tether.workflow(budget={"max_model_calls": 2})(app.child_asks.fn)  # type: ignore[call-overload]


async def test_a_local_run_keeps_its_budget_too(chat_server: ChatServer) -> None:
    with pytest.raises(tether.BudgetExceeded) as info:
        await app.two_calls_allowed(app.Asks(model=chat_server.model(), times=3))
    assert info.value.limit == "max_model_calls" and info.value.used["model_calls"] == 2
    await eventually(lambda: len(chat_server.requests) == 2)


async def test_tether_stats_shows_how_runs_spend_their_budgets(tether_server: DevServer, chat_server: ChatServer,
                                                               tmp_path: Path) -> None:
    conn = Connection(address=tether_server.address, task_queue=unique_queue("budget-stats"), telemetry=True)
    client = tether.Client(await conn.connect(), conn)
    model = chat_server.model()
    with observe.capture_spans() as captured:
        async with tether.Worker(client):
            assert await client.run(app.two_calls_allowed, app.Asks(model=model, times=1)) == ["an answer"]
            with pytest.raises(tether.RunFailed):
                await client.run(app.two_calls_allowed, app.Asks(model=model, times=3))
            raised = await client.start(app.ask_to_spend_more, app.Asks(model=model, times=3))
            task = await client.tasks.wait(raised.id, timeout=60)
            await client.tasks.answer(task.id, {"action": "raise", "max_model_calls": 4}, by="cfo")
            await raised.result(timeout=60)
        state = tmp_path / "state"
        state.mkdir()
        SqliteSpanExporter(state / STORE_FILE).export(captured.get_finished_spans())
    cmd = [sys.executable, "-m", "tether", "stats", "--state-dir", str(state)]
    data = json.loads(subprocess.run([*cmd, "--json"], capture_output=True, text=True, check=True).stdout)
    by_wf = {w["workflow"]: w for w in data["workflows"]}
    capped, escalating = by_wf["two_calls_allowed"], by_wf["ask_to_spend_more"]
    assert (capped["budgeted"], capped["over_budget"], capped["budget_raised"]) == (2, 1, 0)
    assert (capped["budget_used_p50"], capped["budget_used_max"]) == (0.5, 1.0)  # 1 of 2 calls; 2 of 2
    assert (escalating["over_budget"], escalating["budget_raised"], escalating["budget_used_max"]) == (0, 1, 0.75)
    printed = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "budgets" in printed and "STOPPED BY IT" in printed
    row = next(line for line in printed.splitlines() if line.strip().startswith("two_calls_allowed")
               and "%" in line)
    assert row.split()[1:] == ["2", "1", "0", "50.0%", "100.0%"]
