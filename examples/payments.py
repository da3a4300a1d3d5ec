"""Payments: an external effect made safe to retry with `tether.idempotency_key()`.

A completed step never runs again, but an attempt cut off after the payment service charged
the card and before the result was recorded (the worker died, the answer was lost) is retried.
The key is the same for every attempt of this step call, so a service that deduplicates on it
(as Stripe, Adyen and most payment APIs do with an `Idempotency-Key` header) charges once.

    tether run examples/payments.py:pay --input '{"order": "A-1", "amount_cents": 4200, "service_url": "http://127.0.0.1:8099/charges"}'
"""

from __future__ import annotations

import json
import urllib.request

from pydantic import BaseModel

import tether


class Payment(BaseModel):
    order: str
    amount_cents: int
    service_url: str


@tether.step(attempts=tether.RetryPolicy(max_attempts=5, initial_interval="200ms"))
def charge(payment: Payment) -> str:
    """Charge the order once, however often this attempt is repeated; returns the charge id."""
    body = json.dumps({"order": payment.order, "amount_cents": payment.amount_cents}).encode()
    request = urllib.request.Request(payment.service_url, data=body, headers={
        "Content-Type": "application/json",
        "Idempotency-Key": tether.idempotency_key(),  # same on every attempt of this call
    })
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["charge"])


@tether.workflow
async def pay(payment: Payment) -> str:
    """Charge a payment and return its charge id."""
    return await charge(payment)
