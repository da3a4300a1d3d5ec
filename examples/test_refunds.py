"""A complete workflow test: the real Temporal dev server, a worker, a scripted model, a person.

Run with `pytest examples/test_refunds.py` (tether's pytest plugin provides `tether_client`).
"""

import tether
from examples.refunds import Refund, handle_refund, pay_back
from tether import llm
from tether.testing import ScriptedModel

reader = ScriptedModel("refund-reader", lambda call: {
    "reason": "damaged", "angry": "!!" in call.messages[-1].content})


async def test_a_big_refund_waits_for_support(tether_client: tether.Client) -> None:
    with llm.substitute({"mistral:*": reader.model}):  # the workflow's model, answered by the script
        async with tether.Worker(tether_client):
            run = await tether_client.start(handle_refund, Refund(order="A-1", amount=250, message="Broken"))
            task = await tether_client.tasks.wait(run.id)  # the run is waiting for a person
            assert task.question == "Refund 250 EUR for order A-1 (damaged)?"
            await tether_client.tasks.answer(task.id, True, by="support-lead")
            assert await run.result(timeout=30) == "refund-A-1"


async def test_a_small_calm_refund_is_paid_at_once(tether_client: tether.Client) -> None:
    with llm.substitute({"mistral:*": reader.model}):
        async with tether.Worker(tether_client):
            refund = Refund(order="B-2", amount=40, message="It arrived broken")
            assert await tether_client.run(handle_refund, refund) == "refund-B-2"
    assert reader.calls[-1].model == reader.model  # the scripted model answered


def test_a_step_is_a_plain_function_outside_workflows() -> None:
    # no server needed: `.fn` is the plain function (a step's own call is typed awaitable, for workflows)
    assert pay_back.fn(Refund(order="C-3", amount=1, message="late")) == "refund-C-3"
