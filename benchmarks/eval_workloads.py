"""The workflow the evaluation benchmark runs (a module of its own: Temporal's sandbox re-imports it)."""

from __future__ import annotations

import re

from pydantic import BaseModel

import tether
from tether import llm
from tether.llm import ModelCall
from tether.testing import ScriptedModel


class Doc(BaseModel):
    text: str


class Total(BaseModel):
    amount: float
    currency: str


@tether.step
def bench_eval_check(doc: Doc) -> bool:
    """A plain rule beside the model step."""
    return bool(doc.text)


def _read(call: ModelCall) -> dict[str, object]:
    found = re.search(r"(\d+) (EUR|USD)", call.messages[-1].content)
    return {"amount": float(found.group(1)) if found else 0.0, "currency": found.group(2) if found else "EUR"}


reader = ScriptedModel("bench-eval-reader", _read)


@tether.workflow
async def bench_eval_read(doc: Doc) -> Total:
    """A rule, then one structured model call (scripted: the model costs nothing, the orchestration shows)."""
    await bench_eval_check(doc)
    return await llm.extract(Total, doc.text, model=reader.model)
