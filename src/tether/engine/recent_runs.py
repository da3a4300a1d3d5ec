"""The newest runs of a listing, kept between calls by a long-lived reader (Studio's runs page).

Runs in the Studio server. A closed run's listing row never changes, so after a first full
listing each call asks Temporal only for the runs that are running or closed since (a few
rows, where listing 1,000 runs costs the server ~0.4 s), merged into what it kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tether.engine.client import _EPOCH, Client, RunSummary, list_query


@dataclass
class _Kept:
    """The top `capacity` runs of one query, in the server's order, as of `loaded_at`."""

    rows: list[RunSummary]
    capacity: int
    loaded_at: float  # time.monotonic() of the last full listing
    asked_at: datetime  # when the last listing (full or not) was asked for


def _key(r: RunSummary) -> tuple[str, datetime]:
    return r.id, r.started_at or _EPOCH


def _server_order(r: RunSummary) -> tuple[bool, datetime, datetime]:
    """Temporal's listing order, descending: running runs first, then by close time, then start time."""
    return r.closed_at is None, r.closed_at or _EPOCH, r.started_at or _EPOCH


class RecentRuns:
    """`Client.list_runs` for a reader that lists the same runs again and again.

    Args:
        client: The client to list with.
        max_age: Seconds after which a listing is read in full again (a run deleted by retention
            disappears from the page within this time).
        margin: Seconds before the previous listing that a refresh reads back from: covers a
            visibility record written late and a clock difference with the server.
        queries: How many different listings (filter combinations) to keep.
    """

    def __init__(self, client: Client, *, max_age: float = 60.0, margin: float = 5.0, queries: int = 8) -> None:
        self.client = client
        self.max_age = max_age
        self.margin = timedelta(seconds=margin)
        self.queries = queries
        self._kept: dict[str | None, _Kept] = {}

    async def list_runs(self, *, workflow: str | None = None, status: str | None = None,
                   id_prefix: str | None = None, limit: int = 20) -> list[RunSummary]:
        """The most recent runs, newest first (as `Client.list_runs`, over every task queue)."""
        query = list_query(workflow=workflow, status=status, id_prefix=id_prefix)
        rows = (await self._rows(query, limit))[:limit]
        rows.sort(key=lambda r: r.started_at or _EPOCH, reverse=True)
        rows = await self.client._mark_stuck(rows)
        return [r for r in rows if r.status == "stuck"] if status == "stuck" else rows

    async def _rows(self, query: str | None, limit: int) -> list[RunSummary]:
        kept = self._kept.pop(query, None)  # re-inserted last: the dict's order is least recently used first
        fresh = kept is not None and kept.capacity >= limit and time.monotonic() - kept.loaded_at < self.max_age
        asked = datetime.now(UTC)
        rows = await self._refresh(query, kept) if fresh and kept is not None else None
        if rows is None or kept is None:
            kept = _Kept(await self.client._list_summaries(query, limit), limit, time.monotonic(), asked)
        else:
            kept.rows, kept.asked_at = rows, asked
        self._kept[query] = kept
        while len(self._kept) > self.queries:
            del self._kept[next(iter(self._kept))]
        return list(kept.rows)

    async def _refresh(self, query: str | None, kept: _Kept) -> list[RunSummary] | None:
        """The kept rows with what changed since merged in; None when a full listing is needed."""
        since = kept.asked_at - self.margin
        changed = f"(ExecutionStatus = 'Running' OR CloseTime >= '{since.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}')"
        delta = await self.client._list_summaries(f"({query}) AND {changed}" if query else changed, kept.capacity)
        if len(delta) >= kept.capacity:
            return delta  # what changed fills the page: it is the page
        seen = {_key(r) for r in delta}
        for r in kept.rows:
            # A kept row that is not in the delta must have closed before `since`; otherwise it was
            # deleted (or closed with a record later than the margin): read everything again.
            if _key(r) not in seen and (r.closed_at is None or r.closed_at >= since):
                return None
        rows = delta + [r for r in kept.rows if _key(r) not in seen]
        rows.sort(key=_server_order, reverse=True)
        return rows[:kept.capacity]
