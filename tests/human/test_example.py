"""The invoice example's human approval, against the real dev server."""

from __future__ import annotations

import json
from pathlib import Path

import tether
from tests.human.conftest import wait_for_task

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


async def test_big_invoices_wait_for_approval_small_ones_do_not(tether_client: tether.Client) -> None:
    app = tether.load_app(str(EXAMPLES / "invoice.py"))
    flow = app.workflows["process_invoice"]
    big = json.loads((EXAMPLES / "invoice_big.json").read_text())
    small = json.loads((EXAMPLES / "invoice.json").read_text())
    async with tether.Worker(tether_client, workflows=[flow], steps=list(app.steps.values())):
        assert (await tether_client.run(flow, small)).approved  # the README demo: no person needed
        run = await tether_client.start(flow, big)
        task = await wait_for_task(tether_client, f"{run.id}.1")
        assert (task.assignee, task.context["total"]) == ("finance", "14280.00")
        await tether_client.tasks.answer(task.id, {"approved": False, "comment": "over budget"}, by="cfo")
        decision = await run.result()
    assert (decision.approved, decision.reasons) == (False, ["not approved: over budget"])
