"""Tracing overhead: the step-overhead workload with telemetry on (spans to the local SQLite store,
as under `tether dev`) vs off, same dev server, same run, alternating rounds. Target: on / off <= 1.10.

    .venv/bin/python -m benchmarks.tracing_overhead [--workflows 40] [--steps 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from benchmarks.harness import alternate, tether_round
from tether import observe
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.observe import SpanStore


async def main(n: int, k: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as server:
        store = observe.use_store(Path(tmp) / "traces.db")
        on, off = Connection(telemetry=True), Connection(telemetry=False)
        t_on, t_off = await alternate(rounds, lambda: tether_round(server.address, n, k, on),
                                      lambda: tether_round(server.address, n, k, off))
        observe.flush()
        stored = len(SpanStore(store).since(0))
    steps = n * k
    print(f"workload: {n} workflows x {k} no-op steps, median of {rounds} alternating rounds")
    print(f"telemetry off:              {t_off:.2f}s  ({steps / t_off:.0f} steps/s)")
    print(f"telemetry on (local store): {t_on:.2f}s  ({steps / t_on:.0f} steps/s)  {stored} spans stored")
    print(f"ratio on/off: {t_on / t_off:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workflows", type=int, default=40)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.workflows, a.steps, a.rounds))
