"""Studio render time: the runs page with 1,000 runs in the store and the run page of a 200-step run.

Server time of the Studio app (in process, no network), against the raw Temporal calls
each page needs, measured in the same run: `list_workflows` for the runs page, and
`describe` + `fetch_history_events` for the run page. Payloads are encrypted (Studio
decrypts them) and spans go to a local span store (the runs page reads costs from it).
Studio keeps the runs it listed (closed runs never change) and asks Temporal only for what
changed since; "first view" is a Studio that has kept nothing yet. Targets: each page under 300 ms.

    .venv/bin/python -m benchmarks.studio_render [--runs 1000] [--steps 200] [--repeat 15]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

import tether
from tether import observe
from tether.engine.codec import Keyring, build_codec, new_key
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.studio import create_studio

TARGET_MS = 300.0


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    """Milliseconds of each of `repeat` calls (after one warm-up call)."""
    await fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def make_runs(client: tether.Client, n: int, steps: int) -> str:
    """`n` finished quick runs and one run of `steps` steps; returns the long run's id."""
    from tests.apps import studio_flows as flows

    async with tether.Worker(client, workflows=[flows.studio_quick, flows.studio_many_steps],
                             steps=[flows.studio_noop]):
        for i in range(0, n, 100):
            runs = await asyncio.gather(*(client.start(flows.studio_quick, j) for j in range(i, min(i + 100, n))))
            await asyncio.gather(*(r.result() for r in runs))
        long = await client.start(flows.studio_many_steps, steps)
        await long.result()
    return long.id


async def wait_listed(client: tether.Client, n: int) -> None:
    """Until visibility lists all `n` + 1 runs (it lags behind completion)."""
    while len(await client.list_runs(task_queue=client.connection.task_queue, limit=n + 1)) < n + 1:
        await asyncio.sleep(0.2)


async def main(n: int, steps: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as server:
        store = observe.use_store(Path(tmp) / "traces.db")
        conn = Connection(address=server.address, task_queue="bench-studio", telemetry=True,
                          codec=build_codec(Keyring([new_key()])))
        client = tether.Client(await conn.connect(), conn)
        t0 = time.perf_counter()
        long_id = await make_runs(client, n, steps)
        await wait_listed(client, n)
        observe.flush()
        print(f"setup: {n} runs + one {steps}-step run in {time.perf_counter() - t0:.1f}s "
              f"(payloads encrypted, spans in a local store)")
        app = create_studio(client, store=store)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
            await report(http, client, long_id, n, repeat, lambda: create_studio(client, store=store))


async def report(http: httpx.AsyncClient, client: tether.Client, long_id: str, n: int, repeat: int,
                 new_studio: Callable[[], Any]) -> None:
    async def page(url: str, expect: str) -> None:
        r = await http.get(url)
        assert r.status_code == 200 and expect in r.text, (url, r.status_code)

    async def first_view(url: str, expect: str) -> None:
        """The page in a Studio that has kept nothing yet (just started)."""
        transport = httpx.ASGITransport(app=new_studio())
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as fresh:
            r = await fresh.get(url)
        assert r.status_code == 200 and expect in r.text, (url, r.status_code)

    async def raw_list(limit: int) -> None:
        assert len([e async for e in client.temporal.list_workflows(None, limit=limit)]) == limit

    async def raw_describe() -> None:
        handle = client.temporal.get_workflow_handle(long_id)
        await handle.describe()
        assert len([e async for e in handle.fetch_history_events()]) > 0

    rows = [
        ("runs page (100 newest of the store)", lambda: page("/runs", "studio_quick"), lambda: raw_list(100)),
        (f"runs page showing all {n}", lambda: page(f"/runs?limit={n}", "studio_quick"), lambda: raw_list(n)),
        ("  the same, Studio's first view", lambda: first_view(f"/runs?limit={n}", "studio_quick"),
         lambda: raw_list(n)),
        ("run page, 200 steps", lambda: page(f"/runs/{long_id}", "studio_noop"), raw_describe),
    ]
    print(f"{'page':40} {'median':>9} {'p95':>9} {'raw call':>9} {'ratio':>7}  (server time, ms, {repeat} runs)")
    for name, studio_fn, raw_fn in rows:
        mine = await timed(studio_fn, repeat)
        raw = await timed(raw_fn, repeat)
        med, p95, base = statistics.median(mine), sorted(mine)[int(0.95 * (len(mine) - 1))], statistics.median(raw)
        verdict = "ok" if med < TARGET_MS else "OVER TARGET"
        print(f"{name:40} {med:9.1f} {p95:9.1f} {base:9.1f} {med / base:7.2f}  {verdict} (target < {TARGET_MS:.0f})")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeat", type=int, default=15)
    a = p.parse_args()
    asyncio.run(main(a.runs, a.steps, a.repeat))
