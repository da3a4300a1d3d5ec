"""A small workflow with two model steps and scripted models for the evaluation tests.

`read_note` classifies a note (classify) and reads its amount (extract). Scripted models answer:
`eval-reader` reads amount and currency correctly, `eval-sloppy` gets the amount wrong by 1 (an
invalid first reply on one case, so it is repaired), `eval-slow` is `eval-reader` that takes its time,
`eval-label` classifies. Served by in-process workers and by `tether eval`'s own worker.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from tether import llm, workflow
from tether.llm import ModelCall
from tether.testing import ScriptedModel


class Note(BaseModel):
    text: str


class Amount(BaseModel):
    amount: float
    currency: str


class Reading(BaseModel):
    kind: str
    amount: float
    currency: str


def _note(call: ModelCall) -> str:
    return next(m.content for m in call.messages if m.role == "user")


def _read(call: ModelCall) -> dict[str, Any]:
    text = _note(call)
    found = re.search(r"(\d+(?:\.\d+)?) (EUR|USD)", text)
    assert found is not None, text
    return {"amount": float(found.group(1)), "currency": found.group(2)}


def _sloppy(call: ModelCall) -> Any:
    got = _read(call)
    if got["amount"] == 30 and call.repair == 0:
        return "{not json"  # the first reply for this case is invalid: the step repairs it
    return {"amount": got["amount"] + 1, "currency": got["currency"]}


reader = ScriptedModel("eval-reader", _read)
sloppy = ScriptedModel("eval-sloppy", _sloppy)
slow = ScriptedModel("eval-slow", _read, delay=0.4)
labeller = ScriptedModel("eval-label", lambda call: {
    "label": "refund" if "refund" in _note(call) else "invoice"})


@workflow
async def read_note(note: Note) -> Reading:
    """Classify the note and read its amount; both with the workflow's own default models."""
    kind = await llm.classify(note.text, labels=["invoice", "refund"], model="scripted:eval-label")
    got = await llm.extract(Amount, note.text, model="scripted:eval-reader")
    return Reading(kind=kind, amount=got.amount, currency=got.currency)


@workflow
async def read_or_ask(note: Note) -> Reading:
    """Like `read_note`, but a note marked "unsure" goes to a person (the case is escalated)."""
    if "unsure" in note.text:
        import tether

        await tether.confirm(f"Is {note.text!r} an invoice?")
    return await read_note.fn(note)
