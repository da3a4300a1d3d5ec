"""examples/support_agent.py end to end: the CRM's real MCP server in zone crm, the identity check
in zone vault, the address change approved by a person; with a scripted model (exact path) and
with the real local model (SmolLM2: every reply a well-formed call of a real tool or a final answer)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import tether
from tests.apps import agent_example
from tether import llm

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GRACE = {"sender": "grace@example.com", "subject": "Moving", "body": "Hi, please change my address to "
         "42 Nanosecond Way, Arlington. My date of birth is 1986-12-09. Grace"}


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tether.App]:
    tmp = tmp_path_factory.mktemp("support")
    mp = pytest.MonkeyPatch()
    mp.setenv("CRM_DB", str(tmp / "crm.db"))
    mp.setenv("IDENTITY_DB", str(tmp / "identity.db"))
    mp.setenv("SUPPORT_MODEL", "")  # the model comes from TETHER_MODEL in these tests
    yield tether.load_app(str(EXAMPLES / "support_agent.py"))
    mp.undo()


async def _until_done(client: tether.Client, run: tether.Run[Any], answers: dict[str, Any],
                      timeout: float = 240) -> tuple[Any, list[tether.HumanTask]]:
    """Wait for the run, answering each task it opens: confirmations with answers['confirm']."""
    seen: list[tether.HumanTask] = []
    waiting = asyncio.ensure_future(run.result())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not waiting.done():
        assert loop.time() < deadline, "the support run did not finish"
        for task in await client.tasks.list(run_id=run.id):
            if task.id not in {t.id for t in seen}:
                seen.append(task)
                await client.tasks.answer(task.id, answers["confirm" if task.kind == "confirm" else "question"],
                                          by="test")
        await asyncio.wait({waiting}, timeout=0.3)
    return waiting.result(), seen


async def test_scripted_model_follows_the_whole_path(example: tether.App, tether_client: tether.Client,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_MODEL", agent_example.SUPPORT.model)
    flow = example.workflows["handle_email"]
    async with tether.Worker(tether_client, queues=["main", "crm", "vault"]):
        run = await tether_client.start(flow, GRACE)
        handled, tasks = await _until_done(tether_client, run, {"confirm": True, "question": ""})
        detail = await run.describe()
    assert (handled.customer_id, handled.verified, handled.address_changed) == ("CU-1002", True, True)
    assert handled.by == "agent" and handled.model_claims_match and handled.turns == 4
    (task,) = tasks
    assert task.assignee == "support-lead" and "crm_update_address" in task.question
    assert "42 Nanosecond Way, Arlington" in task.question
    with sqlite3.connect(Path(example.module.CRM_DB)) as db:
        (address,) = db.execute("SELECT address FROM customers WHERE customer_id = 'CU-1002'").fetchone()
    assert address == "42 Nanosecond Way, Arlington"
    zones = {s.name: s.zone for s in detail.steps if s.kind == "step"}
    assert zones["verify_customer"] == "vault" and zones["tether.mcp.call_tool"] == "crm"
    assert zones[llm.STEP_NAME] is None  # the reasoning stays with the workflow's workers


async def test_local_model_only_makes_well_formed_calls(example: tether.App, tether_client: tether.Client,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_MODEL", raising=False)  # the default: local:smollm2
    flow = example.workflows["handle_email"]
    email = {"sender": "alan@example.com", "subject": "New address", "body": "Please change my address to "
             "2 Bletchley Park, Milton Keynes. My date of birth is 1992-06-23. Alan"}
    async with tether.Worker(tether_client, queues=["main", "crm", "vault"]):
        run = await tether_client.start(flow, email)
        handled, _ = await _until_done(tether_client, run, {"confirm": False, "question": "We will reply soon."})
        detail = await run.describe()
    assert handled.by in ("agent", "person")
    replies = [llm.ModelReply.model_validate(s.result) for s in detail.steps
               if s.name == llm.STEP_NAME and s.status == "completed"]
    assert replies and all(r.model == "local:smollm2" for r in replies)
    specs = {t.name: t.parameters for t in await _tools(example)}
    for reply in replies:  # llama.cpp's grammar: a real tool with valid arguments, or a final answer
        for call in reply.tool_calls:
            jsonschema.validate(call.arguments, specs[call.name])
        if not reply.tool_calls and handled.by == "agent":
            example.module.SupportReply.model_validate_json(llm._json.json_text(reply.text))


async def _tools(example: tether.App) -> list[tether.tools.Tool]:
    agent = example.module.support
    return [*await agent.toolsets[0].tools(), *agent.tools]
