"""Encryption overhead: the step-overhead workload with and without the payload codec.

Same dev server, same run, alternating rounds. The baseline passes payloads through
unchanged (an empty codec chain); the measured side encrypts every payload with
AES-256-GCM and checks sizes for claim checks, as every keyed worker does.
Target: with / without <= 1.05.

    .venv/bin/python -m benchmarks.codec_overhead [--workflows 40] [--steps 10] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from benchmarks.harness import alternate, tether_round
from tether.engine.codec import CodecChain, FileStore, Keyring, build_codec, new_key
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer


async def main(n: int, k: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as server:
        sealed = Connection(codec=build_codec(Keyring([new_key()]), store=FileStore(Path(tmp) / "payloads")))
        plain = Connection(codec=CodecChain())
        t_sealed, t_plain = await alternate(rounds, lambda: tether_round(server.address, n, k, sealed),
                                            lambda: tether_round(server.address, n, k, plain))
    steps = n * k
    print(f"workload: {n} workflows x {k} no-op steps, median of {rounds} alternating rounds")
    print(f"without codec: {t_plain:.2f}s  ({steps / t_plain:.0f} steps/s)")
    print(f"with codec:    {t_sealed:.2f}s  ({steps / t_sealed:.0f} steps/s)")
    print(f"ratio with/without: {t_sealed / t_plain:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workflows", type=int, default=40)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    asyncio.run(main(a.workflows, a.steps, a.rounds))
