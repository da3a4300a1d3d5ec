"""The invoice workflow with a reference reader for evaluations: `scripted:invoice-reader` answers the
invoice's model steps the way a careful clerk would (a category from the known line items, the
document's own supplier, total and currency), so a real model can be measured against it offline.

    tether eval examples/invoice_eval.py:process_invoice --dataset examples/invoice_cases.jsonl \\
        --models classify=local:smollm2,extract=local:smollm2 \\
        --models classify=scripted:invoice-reader,extract=scripted:invoice-reader \\
        --score fields --score schema
"""

from __future__ import annotations

import re
from typing import Any

from examples.invoice import CATEGORIES, process_invoice
from tether.llm import ModelCall
from tether.testing import ScriptedModel

GOODS = ("widgets", "bolts", "paper", "gloves")
SERVICES = ("support", "consulting", "installation")


def _user_text(call: ModelCall) -> str:
    return next(m.content for m in call.messages if m.role == "user")


def _category(lines: str) -> str:
    goods = any(g in lines.lower() for g in GOODS)
    services = any(s in lines.lower() for s in SERVICES)
    return CATEGORIES[2] if goods and services else CATEGORIES[1] if services else CATEGORIES[0]


def _stated(text: str) -> dict[str, Any]:
    supplier = re.search(r"from (.+?)\.", text)
    total = re.search(r"total ([0-9.]+) (EUR|USD|GBP|CHF)", text)
    return {"supplier": supplier.group(1) if supplier else "unknown",
            "total": float(total.group(1)) if total else 0.0, "currency": total.group(2) if total else "EUR"}


def _read(call: ModelCall) -> dict[str, Any]:
    text = _user_text(call)
    if call.purpose == "classify":
        return {"label": _category(text)}
    return _stated(text)


reader = ScriptedModel("invoice-reader", _read)

__all__ = ["process_invoice", "reader"]
