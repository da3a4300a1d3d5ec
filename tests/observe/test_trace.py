"""One trace per run, asserted with an in-memory exporter: the span tree, GenAI attributes, retries,
notes and decisions, tool calls, human tasks, content capture and metrics."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import tether
from tests.apps import human_flows, obs_flows
from tests.observe.conftest import attrs, children, metric_points, named, of_run


async def test_span_tree_of_a_run_explains_it(traced: tether.Client, spans: InMemorySpanExporter) -> None:
    async with tether.Worker(traced, workflows=[obs_flows.obs_explained]):
        run = await traced.start(obs_flows.obs_explained, "ACME invoice, total 250 EUR")
        report = await run.result()
    assert report.reviewed and report.doubled == 42 and report.summary.startswith("summary of")
    got = of_run(spans, run.id)

    (root,) = named(got, "run obs_explained")
    assert root.parent is None and root.kind == SpanKind.SERVER
    assert attrs(root)["tether.run_id"] == run.id and attrs(root)["tether.outcome"] == "completed"
    assert {s.context.trace_id for s in got} == {root.context.trace_id}
    top = children(got, root)
    assert [s.name for s in top] == ["step obs_flaky"] + ["step tether.llm"] * 4 + ["execute_tool lookup_customer"]

    # the retried step: three attempts under it, the first two failed with their error
    flaky = top[0]
    attempts = children(got, flaky)
    assert [attrs(a)["tether.step.attempt"] for a in attempts] == [1, 2, 3]
    assert [attrs(a)["tether.outcome"] for a in attempts] == ["retry", "retry", "ok"]
    assert [a.status.status_code for a in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.OK]
    (error,) = [e for e in attempts[0].events if e.name == "exception"]
    assert attrs(error)["exception.type"] == "RuntimeError"
    assert attrs(error)["exception.message"] == "flaky: attempt 1 failed"

    # model calls: GenAI spans under each model step's attempt, with round and fallback position
    models = []
    for step in top[1:5]:
        (attempt,) = children(got, step)
        (model,) = children(got, attempt)
        models.append(model)
    assert [m.name for m in models] == ["chat obs-repair", "chat obs-repair", "chat obs-down", "chat obs-up"]
    first, repair, down, up = models
    for m in models:
        assert m.kind == SpanKind.CLIENT
        assert attrs(m)["gen_ai.operation.name"] == "chat"
        assert attrs(m)["gen_ai.provider.name"] == "scripted"
    assert attrs(first)["gen_ai.request.model"] == "obs-repair"
    assert attrs(first)["gen_ai.response.model"] == "scripted:obs-repair"
    assert attrs(first)["gen_ai.usage.input_tokens"] > 0 and attrs(first)["gen_ai.usage.output_tokens"] > 0
    assert attrs(first)["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs(first)["gen_ai.output.type"] == "json"
    assert (attrs(first)["tether.llm.repair"], attrs(repair)["tether.llm.repair"]) == (0, 1)
    assert attrs(repair)["tether.llm.reason"].startswith("invalid reply from scripted:obs-repair")
    assert down.status.status_code == StatusCode.ERROR and attrs(down)["error.type"] == "ModelError"
    assert (attrs(down)["tether.llm.fallback"], attrs(up)["tether.llm.fallback"]) == (0, 1)
    tokens_in, tokens_out = attrs(up)["gen_ai.usage.input_tokens"], attrs(up)["gen_ai.usage.output_tokens"]
    assert attrs(up)["tether.llm.cost_usd"] == pytest.approx((1000 * tokens_in + 2000 * tokens_out) / 1e6)
    assert "tether.llm.cost_usd" not in attrs(first)  # no known price: no cost rather than a wrong one
    assert top[3].status.status_code == StatusCode.ERROR  # the failed model step, before the fallback

    # the tool call: an execute_tool span with the step that served it nested inside
    tool = top[5]
    assert attrs(tool)["gen_ai.operation.name"] == "execute_tool"
    assert attrs(tool)["gen_ai.tool.name"] == "lookup_customer"
    assert attrs(tool)["gen_ai.tool.call.id"] == "call-1"
    (tool_step,) = children(got, tool)
    assert tool_step.name == "step obs_lookup_customer" and len(children(got, tool_step)) == 1

    # the decision and the note, on the run span, with their inputs
    decision, note = [e for e in root.events if e.name.startswith("tether.")]
    assert decision.name == "tether.decision"
    assert attrs(decision) == {"tether.decision.name": "high_total", "tether.decision.outcome": True,
                                         "tether.decision.input.total": 250.0, "tether.decision.input.limit": 100}
    assert note.name == "tether.note"
    assert attrs(note)["tether.note.message"] == "routed to manual review"
    assert attrs(note)["tether.note.supplier"] == "ACME"
    # content capture is off unless asked for
    assert all("gen_ai.input.messages" not in attrs(m) for m in models)


async def test_notes_and_decisions_show_in_tether_show(traced: tether.Client, spans: InMemorySpanExporter) -> None:
    async with tether.Worker(traced, workflows=[obs_flows.obs_explained]):
        run = await traced.start(obs_flows.obs_explained, "ACME invoice")
        await run.result()
    detail = await traced.get(run.id).describe()  # from the history: no worker, no trace backend
    notes = [s for s in detail.steps if s.kind == "note"]
    assert [n.name for n in notes] == ["decision: high_total = True (total=250.0, limit=100)",
                                       "note: routed to manual review (supplier=ACME)"]
    assert detail.steps.index(notes[0]) > max(i for i, s in enumerate(detail.steps) if s.kind == "step")


async def test_prompts_and_replies_are_recorded_when_capture_is_on(
        traced: tether.Client, spans: InMemorySpanExporter, capture_on: None) -> None:
    async with tether.Worker(traced, workflows=[obs_flows.obs_explained]):
        run = await traced.start(obs_flows.obs_explained, "ACME invoice, total 250 EUR")
        await run.result()
    repair = [s for s in of_run(spans, run.id) if s.name == "chat obs-repair"][1]
    assert '"content": "ACME invoice, total 250 EUR"' in attrs(repair)["gen_ai.input.messages"]
    assert '"role": "assistant"' in attrs(repair)["gen_ai.input.messages"]  # the invalid reply sent back
    assert '\\"total\\": 250.0' in attrs(repair)["gen_ai.output.messages"]


async def test_a_client_with_telemetry_off_makes_no_spans(tether_server, spans: InMemorySpanExporter) -> None:  # type: ignore[no-untyped-def]
    from tether.engine.connection import Connection
    from tether.testing import unique_queue

    conn = Connection(address=tether_server.address, task_queue=unique_queue("obs-off"), telemetry=False)
    client = tether.Client(await conn.connect(), conn)
    async with tether.Worker(client, workflows=[obs_flows.obs_zoned], queues=["main", "obszone"]):
        run = await client.start(obs_flows.obs_zoned, "x")
        assert await run.result() == "zoned:x-1"
    assert not [s for s in spans.get_finished_spans() if attrs(s).get("tether.run_id") == run.id]


async def test_failed_run_and_step_metrics(traced: tether.Client, spans: InMemorySpanExporter,
                                           metrics: InMemoryMetricReader) -> None:
    async with tether.Worker(traced, workflows=[obs_flows.obs_explained]):
        run = await traced.start(obs_flows.obs_explained, "ACME invoice")
        await run.result()
    attempts = {(a["tether.step.name"], a["tether.outcome"]): v
                for a, v in metric_points(metrics, "tether.step.attempts") if a["tether.step.name"] == "obs_flaky"}
    assert attempts[("obs_flaky", "retry")] >= 2 and attempts[("obs_flaky", "ok")] >= 1
    assert sum(v for a, v in metric_points(metrics, "tether.step.retries") if a["tether.step.name"] == "obs_flaky") >= 2
    durations = metric_points(metrics, "gen_ai.client.operation.duration")
    assert any(a["gen_ai.request.model"] == "obs-down" and a.get("error.type") == "ModelError" for a, _ in durations)
    tokens = {a["gen_ai.token.type"] for a, _ in metric_points(metrics, "gen_ai.client.token.usage")}
    assert tokens == {"input", "output"}
    runs = [(a, v) for a, v in metric_points(metrics, "tether.runs") if a["tether.workflow"] == "obs_explained"]
    assert runs and runs[0][0]["tether.outcome"] == "completed"


async def test_human_task_span_and_metrics(traced: tether.Client, spans: InMemorySpanExporter,
                                           metrics: InMemoryMetricReader) -> None:
    async with tether.Worker(traced, workflows=[human_flows.human_approval]):
        run = await traced.start(human_flows.human_approval, "Pay invoice INV-1?")
        task_id = f"{run.id}.1"
        for _ in range(100):
            if any(t.id == task_id for t in await traced.tasks.list(run_id=run.id)):
                break
            await asyncio.sleep(0.1)
        await traced.tasks.answer(task_id, {"approved": True, "amount": 12400}, by="alice")
        await run.result()
    (task,) = [s for s in of_run(spans, run.id) if s.name == "human_task question"]
    (root,) = [s for s in of_run(spans, run.id) if s.name == "run human_approval"]
    assert task.parent is not None and task.parent.span_id == root.context.span_id
    assert attrs(task)["tether.human.task_id"] == task_id
    assert attrs(task)["tether.human.status"] == "answered"
    assert attrs(task)["tether.human.answered_by"] == "alice"
    assert attrs(task)["tether.human.wait_seconds"] > 0
    events = {a["tether.event"]: v for a, v in metric_points(metrics, "tether.human.tasks")
              if a["tether.workflow"] == "human_approval"}
    assert events["opened"] >= 1 and events["answered"] >= 1


async def test_egress_blocks_in_workflow_code_are_spans(traced: tether.Client, spans: InMemorySpanExporter,
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_VAULT", str(tmp_path / "vault.db"))
    async with tether.Worker(traced, workflows=[obs_flows.obs_careless], steps=[obs_flows.obs_fetch_secret],
                             queues=["main", "obsvault"]):
        run = await traced.start(obs_flows.obs_careless, "c1")
        try:
            await run.result()
        except tether.RunFailed as exc:
            assert "EgressBlocked" in f"{exc.error_type} {exc}"
        else:
            raise AssertionError("the second egress should fail the run")
    got = of_run(spans, run.id)
    (root,) = named(got, "run obs_careless")
    assert root.status.status_code == StatusCode.ERROR and attrs(root)["tether.outcome"] == "failed"
    blocks = [s for s in children(got, root) if s.name == "egress_blocked"]
    assert [attrs(b)["tether.egress.destination"] for b in blocks] == ["openai:gpt-first", "openai:gpt-second"]
    assert all(attrs(b)["tether.egress.zone"] == "obsvault" for b in blocks)
    assert all(b.status.status_code == StatusCode.ERROR for b in blocks)


async def test_agent_turns_and_tool_calls_in_the_trace(traced: tether.Client, spans: InMemorySpanExporter) -> None:
    async with tether.Worker(traced, workflows=[obs_flows.obs_agent]):
        run = await traced.start(obs_flows.obs_agent, "Who are ACME and Initech?")
        assert await run.result() == "customer-of-ACME; customer-of-Initech"
    got = of_run(spans, run.id)
    (root,) = named(got, "run obs_agent")
    top = children(got, root)
    assert [s.name for s in top] == ["step tether.llm", "execute_tool obs_lookup_customer",
                                     "execute_tool obs_lookup_customer", "step tether.llm"]
    turn1, tool_a, tool_b, _ = top
    assert attrs(turn1)["tether.llm.purpose"] == "agent"
    assert {attrs(t)["gen_ai.tool.call.id"] for t in (tool_a, tool_b)} != {""}
    assert attrs(tool_a)["gen_ai.tool.call.id"] != attrs(tool_b)["gen_ai.tool.call.id"]
    for tool in (tool_a, tool_b):
        (step,) = children(got, tool)
        assert step.name == "step obs_lookup_customer" and len(children(got, step)) == 1
    # the two tool calls ran side by side: each started before the other ended
    assert tool_a.start_time and tool_a.end_time and tool_b.start_time and tool_b.end_time
    assert tool_a.start_time < tool_b.end_time and tool_b.start_time < tool_a.end_time
