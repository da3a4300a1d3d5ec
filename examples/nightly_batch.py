"""A nightly invoice batch, started by a schedule: every night, book the invoices approved that day.

Schedule it (the engine starts each run, even while no tether process runs; a worker picks it up):

    tether schedules create examples/nightly_batch.py:nightly_invoices --cron "0 2 * * *" \\
        --input '{"ledger": "EU-1"}' --id nightly-invoices --overlap skip --catchup 6h

Before deploying a change, check that runs recorded by the old code still replay:

    tether replay examples/nightly_batch.py --file examples/histories/nightly_batch.json
"""

from __future__ import annotations

from pydantic import BaseModel

import tether


class Batch(BaseModel):
    ledger: str
    limit: int = 100


class BatchReport(BaseModel):
    ledger: str
    day: str
    booked: list[str]


@tether.step
def approved_invoices(ledger: str, day: str, limit: int) -> list[str]:
    """The invoices approved on `day` (a real app asks its database)."""
    return [f"{ledger}-{day}-{n:03d}" for n in range(1, min(limit, 3) + 1)]


@tether.step(attempts=5)
def book_invoice(invoice_id: str) -> str:
    """Book one invoice; the key makes a retried booking count once in the ledger."""
    return f"booking-{invoice_id}-{tether.idempotency_key()[-8:]}"


@tether.workflow
async def nightly_invoices(batch: Batch) -> BatchReport:
    day = tether.now().date().isoformat()  # the run's own clock: the night it was scheduled for
    ids = await approved_invoices(batch.ledger, day, batch.limit)
    refs = await tether.gather(*(book_invoice(i) for i in ids))
    return BatchReport(ledger=batch.ledger, day=day, booked=refs)
