"""The chaos benchmark's application: an 8-step order workflow served by worker processes.

Rules, an async step, two charges to a payment service (one with `tether.idempotency_key()`,
one without), a model call, a step in zone `vault`, a person's approval and a final rule.
Every step body writes `start` and `done` lines to a journal, so the driver can count bodies
that finished twice and measure how long a step waited after its worker was killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.request

from pydantic import BaseModel
from temporalio import activity

import tether
from tether import llm


class Order(BaseModel):
    id: str
    amount: float
    pay_url: str
    journal: str
    model: str


def _journal(order: Order, event: str) -> None:
    info = activity.info()
    with open(order.journal, "a") as f:
        f.write(f"{time.time():.3f} {event} {info.workflow_id} {info.activity_id} {info.activity_type} "
                f"{info.attempt} {os.getpid()}\n")


def _charge(order: Order, kind: str, key: str | None) -> str:
    body = json.dumps({"order": order.id, "kind": kind, "amount": order.amount, "key": key}).encode()
    req = urllib.request.Request(order.pay_url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # a 503 raises HTTPError: retried
            return str(json.loads(resp.read())["charge"])
    except Exception:
        _journal(order, "fail")
        raise


@tether.step
def validate(order: Order) -> bool:
    _journal(order, "start")
    ok = order.amount > 0
    _journal(order, "done")
    return ok


@tether.step
async def enrich(order: Order) -> str:
    _journal(order, "start")
    await asyncio.sleep(0.2)
    _journal(order, "done")
    return f"customer-of-{order.id}"


@tether.step(attempts=10)
def charge_keyed(order: Order) -> str:
    _journal(order, "start")
    charge = _charge(order, "keyed", tether.idempotency_key())
    _journal(order, "done")
    return charge


@tether.step(attempts=10)
def charge_plain(order: Order) -> str:
    _journal(order, "start")
    charge = _charge(order, "plain", None)
    _journal(order, "done")
    return charge


@tether.step(runs_on="vault")
def vault_check(order: Order) -> bool:
    _journal(order, "start")
    time.sleep(0.05)
    _journal(order, "done")
    return True


@tether.step
def finish(order: Order, approved: bool) -> str:
    _journal(order, "start")
    _journal(order, "done")
    return "booked" if approved else "rejected"


@tether.workflow
async def process_order(order: Order) -> str:
    await validate(order)
    await enrich(order)
    await charge_keyed(order)
    await charge_plain(order)
    await llm.chat(f"Classify order {order.id}", model=order.model)
    await vault_check(order)
    approved = await tether.confirm(f"Ship order {order.id}?")
    return await finish(order, approved)
