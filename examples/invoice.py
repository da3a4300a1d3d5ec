"""Invoice processing: deterministic checks as plain steps, a branch, a parallel fan-out,
model steps (a small model for the easy one, a larger one with a fallback for the hard one)
and a durable wait before a retried booking; big invoices wait for a person's approval.

Run it:  tether run examples/invoice.py:process_invoice --input @examples/invoice.json

Without cloud keys the model steps run offline on SmolLM2-135M, in-process; with
MISTRAL_API_KEY (or OPENAI_API_KEY) set they use those providers' models.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

import tether
from tether import llm

# A model per step: the easy step gets a small model, the hard one a larger model and a
# fallback. Each is the first of its list this worker can use (a key is set, or it is local).
SMALL = llm.first_available("mistral:mistral-small-latest", "openai:gpt-4.1-mini", "local:smollm2")
LARGE = llm.first_available("mistral:mistral-large-latest", "openai:gpt-4.1", "local:smollm2")
CATEGORIES = ["goods", "services", "goods and services"]


class Line(BaseModel):
    description: str
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0)


class Invoice(BaseModel):
    number: str
    supplier: str
    tax_id: str
    lines: list[Line]
    net: Decimal
    tax_rate: Decimal = Decimal("0.19")
    total: Decimal
    text: str = ""
    """The invoice as received (e-mail or OCR text), if there is one."""


class Stated(BaseModel):
    """What the invoice document itself says, as a model reads it."""

    supplier: str = Field(max_length=80, description="the company that issued the invoice")
    total: float = Field(description="the total amount due, tax included")
    currency: Literal["EUR", "USD", "GBP", "CHF"]


class Decision(BaseModel):
    number: str
    approved: bool
    reasons: list[str]
    booking_ref: str | None = None
    category: str | None = None
    notes: list[str] = []


TAX_ID = re.compile(r"^[A-Z]{2}[0-9A-Z]{8,12}$")
APPROVAL_LIMIT = Decimal("10000")
"""Invoices above this total are booked only after a person approves them."""


class Approval(BaseModel):
    """A person's answer to "book this invoice?"."""

    approved: bool
    comment: str = ""


@tether.step(attempts=1)
def check_tax_id(invoice: Invoice) -> str | None:
    """A VAT id is two letters of country code and 8-12 characters."""
    return None if TAX_ID.match(invoice.tax_id) else f"tax id {invoice.tax_id!r} is malformed"


@tether.step(attempts=1)
def check_amounts(invoice: Invoice) -> str | None:
    """The lines add up to the net amount, and net plus tax to the total."""
    lines = sum((ln.unit_price * ln.quantity for ln in invoice.lines), Decimal(0))
    if lines != invoice.net:
        return f"lines add up to {lines}, not the net {invoice.net}"
    expected = (invoice.net * (1 + invoice.tax_rate)).quantize(Decimal("0.01"))
    if expected != invoice.total:
        return f"net plus tax is {expected}, not the total {invoice.total}"
    return None


@tether.step(attempts=1)
def check_supplier(invoice: Invoice) -> str | None:
    """Only known suppliers are paid automatically."""
    known = {"ACME GmbH", "Globex SARL", "Initech Ltd"}
    return None if invoice.supplier in known else f"unknown supplier {invoice.supplier!r}"


@tether.step(attempts=tether.RetryPolicy(max_attempts=5, initial_interval="200ms"),
             on_failure=tether.escalate(assignee="accounting"))  # ledger down for good: ask a person
def book(invoice: Invoice) -> str:
    """Book the invoice in the ledger (here: a deterministic reference)."""
    return f"BK-{invoice.number}-{int(invoice.total * 100)}"


@tether.workflow
async def process_invoice(invoice: Invoice) -> Decision:
    """Check an invoice in parallel, reject it with reasons or book it."""
    problems = await tether.gather(
        check_tax_id(invoice), check_amounts(invoice), check_supplier(invoice)
    )
    reasons = [p for p in problems if p]
    if reasons:
        return Decision(number=invoice.number, approved=False, reasons=reasons)
    category, notes = await read_invoice(invoice)
    if invoice.total > APPROVAL_LIMIT and not (approval := await approve(invoice)).approved:
        return Decision(number=invoice.number, approved=False, reasons=[f"not approved: {approval.comment}"],
                        category=category, notes=notes)
    await tether.sleep("1s")  # let the ledger settle; durable, survives restarts
    ref = await book(invoice)
    return Decision(number=invoice.number, approved=True, reasons=[], booking_ref=ref, category=category,
                    notes=notes)


async def read_invoice(invoice: Invoice) -> tuple[str, list[str]]:
    """The model steps: file the invoice under a category (easy: small model), and read the
    document's own figures to compare with the data we were given (hard: larger model)."""
    lines = "; ".join(f"{ln.description} x{ln.quantity}" for ln in invoice.lines)
    category = await llm.classify(lines, labels=CATEGORIES, model=SMALL)
    if not invoice.text:
        return category, []
    try:
        stated = await llm.extract(Stated, invoice.text, model=LARGE,
                                   fallbacks=[SMALL] if SMALL != LARGE else [])
    except tether.ModelOutputInvalid as exc:  # advisory: note it rather than stop the booking
        return category, [f"could not read the document: {exc.errors[0]}"]
    if abs(Decimal(str(stated.total)) - invoice.total) > Decimal("0.01"):
        return category, [f"the document states a total of {stated.total:.2f} {stated.currency}, "
                          f"the invoice data {invoice.total}; check it"]
    return category, ["the document agrees with the invoice data"]


async def approve(invoice: Invoice) -> Approval:
    """Ask finance (durably: the run waits, for days if need be); no answer in 2 days is a no."""
    try:
        return await tether.ask_human(
            f"Book invoice {invoice.number} from {invoice.supplier} for {invoice.total}?",
            schema=Approval, timeout="2d", assignee="finance", context=invoice)
    except tether.HumanTaskExpired:
        return Approval(approved=False, comment="nobody approved it within 2 days")
