"""Studio's schedules page over real HTTP: each schedule with its timing, state, next and last run."""

from __future__ import annotations

import uuid

import httpx

from tests.apps import lifecycle
from tests.studio.conftest import StudioServer
from tether.testing import eventually


async def test_schedules_are_listed_with_next_and_last_runs(studio: StudioServer) -> None:
    nightly, hourly = f"nightly-{uuid.uuid4().hex[:6]}", f"hourly-{uuid.uuid4().hex[:6]}"
    schedules = studio.client.schedules
    await schedules.create(lifecycle.invoice_batch, {"day": "mon"}, cron="0 2 * * *", id=nightly)
    await schedules.create(lifecycle.invoice_batch, {"day": "tue"}, every="1h", id=hourly, paused=True,
                           note="ledger migration")
    await schedules.trigger(nightly)  # a last run to show (it waits for a worker; that is fine here)

    async def listed() -> None:
        async with httpx.AsyncClient(base_url=studio.url, timeout=30) as http:
            r = await http.get("/schedules")
        assert r.status_code == 200
        html = r.text
        row = html[html.index(f"<td>{nightly}</td>"):]
        row = row[:row.index("</tr>")]
        assert "cron 0 2 * * *" in row and ">active<" in row
        assert f'href="/runs/{nightly}-' in row and "<td>-</td>" not in row  # next run shown, last run linked
        paused = html[html.index(f"<td>{hourly}</td>"):]
        paused = paused[:paused.index("</tr>")]
        assert "every 1h" in paused and ">paused<" in paused and "ledger migration" in paused
        assert 'href="/schedules" class="on"' in html

    await eventually(listed, timeout=20)
    for s in (nightly, hourly):
        await schedules.delete(s)
