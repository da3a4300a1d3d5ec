"""The nightly batch's tests: its runs still replay with the current code (no server needed),
and a schedule starts it (the real dev server).

Run with `pytest examples/test_nightly_batch.py`.
"""

from pathlib import Path

import tether
from examples.nightly_batch import Batch, nightly_invoices
from tether.testing import eventually, replay

HISTORY = Path(__file__).parent / "histories" / "nightly_batch.json"


def test_recorded_nights_still_replay() -> None:
    # made with `tether history export nightly-invoices-2026-12-01T02:00:00Z > examples/histories/nightly_batch.json`
    replay("examples.nightly_batch", HISTORY)


async def test_the_schedule_starts_the_batch(tether_client: tether.Client) -> None:
    schedule = f"nightly-{tether_client.connection.task_queue}"
    await tether_client.schedules.create(nightly_invoices, Batch(ledger="EU-1"), cron="0 2 * * *", id=schedule)
    async with tether.Worker(tether_client):
        await tether_client.schedules.trigger(schedule)  # tonight's run, now

        async def booked() -> None:
            runs = await tether_client.list_runs(id_prefix=f"{schedule}-", status="completed")
            assert len(runs) == 1
            report = await tether_client.get(runs[0].id).result()  # a handle by id: the result as JSON
            assert report["ledger"] == "EU-1" and len(report["booked"]) == 3

        await eventually(booked, timeout=30)
    await tether_client.schedules.delete(schedule)
