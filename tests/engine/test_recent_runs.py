"""RecentRuns (Studio's runs page listing) keeps closed runs between calls and still shows what changed."""

from __future__ import annotations

import asyncio
import uuid

import tether
from tests.apps import basics, studio_flows
from tether.engine.client import RunSummary
from tether.engine.recent_runs import RecentRuns


def _rows(runs: list[RunSummary]) -> list[tuple[str, str]]:
    return [(r.id, r.status) for r in runs]


async def _listed(client: tether.Client, prefix: str, n: int) -> list[RunSummary]:
    """The uncached listing, once visibility shows `n` runs under `prefix`, none of them running."""
    for _ in range(100):
        runs = await client.list_runs(id_prefix=prefix, limit=50)
        if len(runs) == n and all(r.status != "running" for r in runs):
            return runs
        await asyncio.sleep(0.1)
    raise AssertionError(f"visibility never showed {n} closed runs under {prefix}")


async def test_kept_listing_shows_new_runs_and_runs_that_ended(tether_client: tether.Client) -> None:
    prefix = f"recent-{uuid.uuid4().hex[:8]}-"
    recent = RecentRuns(tether_client, margin=0.5)
    async with tether.Worker(tether_client, workflows=[studio_flows.studio_quick, basics.sleepy]):
        for i in range(3):
            await (await tether_client.start(studio_flows.studio_quick, i, id=f"{prefix}quick-{i}")).result()
        waiting = await tether_client.start(basics.sleepy, 3600.0, id=f"{prefix}waiting")
        while len(await tether_client.list_runs(id_prefix=prefix, limit=50)) < 4:
            await asyncio.sleep(0.1)
        first = await recent.list_runs(id_prefix=prefix, limit=50)
        assert sorted(_rows(first))[-1] == (f"{prefix}waiting", "running")
        assert len(first) == 4

        await waiting.cancel()
        for i in range(3, 5):
            await (await tether_client.start(studio_flows.studio_quick, i, id=f"{prefix}quick-{i}")).result()
        expected = await _listed(tether_client, prefix, 6)
        await asyncio.sleep(1.0)  # past the margin: the next refresh reads only what changed since the last
        assert _rows(await recent.list_runs(id_prefix=prefix, limit=50)) == _rows(expected)
        assert dict(_rows(expected))[f"{prefix}waiting"] == "cancelled"
        # a smaller page is taken from what was kept, as the server would list it
        newest = await tether_client.list_runs(id_prefix=prefix, limit=2)
        assert _rows(await recent.list_runs(id_prefix=prefix, limit=2)) == _rows(newest)
