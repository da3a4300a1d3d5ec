"""The invoice example's model steps, offline: both run on the real local model."""

from __future__ import annotations

import json
from pathlib import Path

import tether
from tether import llm
from tether.llm import _report

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def test_invoice_example_classifies_and_reads_the_document_offline(tether_client: tether.Client) -> None:
    app = tether.load_app(str(EXAMPLES / "invoice.py"))
    module = app.module
    assert module.SMALL == module.LARGE == "local:smollm2"  # the cloud guard is on: no cloud model qualifies
    flow = app.workflows["process_invoice"]
    small = json.loads((EXAMPLES / "invoice.json").read_text())
    async with tether.Worker(tether_client, workflows=[flow], steps=list(app.steps.values())):
        run = await tether_client.start(flow, small)
        decision = await run.result()
        detail = await run.describe()
    assert decision.approved and decision.booking_ref
    assert decision.category in module.CATEGORIES
    assert len(decision.notes) == 1 and ("document" in decision.notes[0])
    labels = [_report.step_label(s) for s in detail.steps if s.name == llm.STEP_NAME]
    assert labels[0] == "llm local:smollm2 · classify"
    assert labels[1].startswith("llm local:smollm2 · extract Stated")
    assert _report.run_usage(detail.steps).cost == 0.0
