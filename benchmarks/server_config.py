"""Dev-server configuration: tether's (SQLite WAL, synchronous=normal) vs the stock
`temporal server start-dev --db-filename`, same workload, same run. Target: >= 3x steps/s.

    .venv/bin/python -m benchmarks.server_config [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile

from benchmarks.harness import raw_round
from tether.engine.devserver import DevServer


async def one(fast: bool, n: int, k: int) -> float:
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0, fast=fast) as server:
        await raw_round(server.address, 4, 2)  # warm up
        return (n * k) / await raw_round(server.address, n, k)


LOADS = ((1, 40), (10, 20), (40, 10))  # (concurrent workflows, steps each)


async def main(rounds: int) -> None:
    print(f"no-op activities on a persistent SQLite dev server, median of {rounds} alternating rounds")
    print(f"{'load':>22}  {'stock':>8}  {'tether':>8}  ratio")
    for n, k in LOADS:
        stock, fast = [], []
        for _ in range(rounds):
            stock.append(await one(False, n, k))
            fast.append(await one(True, n, k))
        s, f = statistics.median(stock), statistics.median(fast)
        print(f"{n:>3} workflows x {k:>2} steps  {s:>6.0f}/s  {f:>6.0f}/s  {f / s:.2f}x")
    print("stock = `temporal server start-dev --db-filename`; tether = the same with "
          "--sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal (target >= 3x)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(p.parse_args().rounds))
