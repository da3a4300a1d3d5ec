"""Step overhead: tether vs the same work written directly with temporalio.

Same dev server, same run, alternating rounds. Target: tether / raw <= 1.10.

    .venv/bin/python -m benchmarks.step_overhead [--workflows 40] [--steps 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile

from benchmarks.harness import alternate, raw_round, tether_round
from tether.engine.devserver import DevServer


async def main(n: int, k: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as server:
        t_tether, t_raw = await alternate(rounds, lambda: tether_round(server.address, n, k),
                                          lambda: raw_round(server.address, n, k))
    steps = n * k
    print(f"workload: {n} workflows x {k} no-op steps, median of {rounds} alternating rounds")
    print(f"raw temporalio: {t_raw:.2f}s  ({steps / t_raw:.0f} steps/s)")
    print(f"tether:         {t_tether:.2f}s  ({steps / t_tether:.0f} steps/s)")
    print(f"ratio tether/raw: {t_tether / t_raw:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workflows", type=int, default=40)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.workflows, a.steps, a.rounds))
