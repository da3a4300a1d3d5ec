"""Step overhead: tether vs the same work written directly with temporalio.

Same dev server, same run, alternating rounds. tether runs with what `tether dev` turns on by
default: every payload encrypted (a payload key, claim checks for large payloads) and telemetry
on (spans kept in the local SQLite store); raw temporalio with its pydantic converter, no codec.
Target: tether / raw <= 1.10.

    .venv/bin/python -m benchmarks.step_overhead [--workflows 40] [--steps 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from benchmarks.harness import alternate, raw_round, tether_round
from tether import observe
from tether.engine.codec import FileStore, Keyring, build_codec, new_key
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.observe import SpanStore


async def main(n: int, k: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as server:
        store = observe.use_store(Path(tmp) / "traces.db")  # where `tether dev` keeps spans
        defaults = Connection(telemetry=True, codec=build_codec(Keyring([new_key()]),
                                                                store=FileStore(Path(tmp) / "payloads")))
        t_tether, t_raw = await alternate(rounds, lambda: tether_round(server.address, n, k, defaults),
                                          lambda: raw_round(server.address, n, k))
        observe.flush()
        spans = len(SpanStore(store).since(0))
    steps = n * k
    print(f"workload: {n} workflows x {k} no-op steps, median of {rounds} alternating rounds")
    print(f"raw temporalio: {t_raw:.2f}s  ({steps / t_raw:.0f} steps/s)")
    print(f"tether:         {t_tether:.2f}s  ({steps / t_tether:.0f} steps/s)  "
          f"payloads encrypted, telemetry on ({spans} spans stored)")
    print(f"ratio tether/raw: {t_tether / t_raw:.3f}  (target <= 1.10)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workflows", type=int, default=40)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.workflows, a.steps, a.rounds))
