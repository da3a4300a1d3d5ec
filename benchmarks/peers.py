"""tether side by side with DBOS Transact 3.x on SQLite, same machine, same run.

Two workloads, each timed through tether (one worker, the embedded dev server) and through DBOS
(its SQLite system database in a temporary folder, removed at the end):

- fan-out: 200 concurrent runs x 3 sequential calls to a loopback model that answers in 200 ms
  (the `llm_concurrency` workload; both sides call the model through `tether.llm`'s provider client);
- no-op: 40 concurrent runs x 10 sequential no-op steps (the `step_overhead` workload).

DBOS runs twice per round: with the SQLite pragmas tether's dev server uses (WAL,
synchronous=normal: the like-for-like figure) and with its stock settings. Rounds alternate
between the systems; each figure is the median. Target: tether/DBOS <= 1.5 on the fan-out.

    .venv/bin/python -m benchmarks.peers [--rounds 3] [--dbos wal,stock] [--workflows 200] [--calls 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from benchmarks import harness
from benchmarks.llm_concurrency import tether_round
from benchmarks.llm_workloads import ChatJob
from benchmarks.peers_dbos import dbos_chat_run, dbos_noop_run, dbos_on_sqlite, run_many, watch_connections
from tether.engine.devserver import FAST_PRAGMAS, DevServer
from tether.testing import ChatServer, chat_reply

DBOS_CONFIGS: dict[str, tuple[str, ...]] = {"wal": FAST_PRAGMAS, "stock": ()}
TARGET = 1.5


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    """Seconds `fn` takes."""
    start = time.perf_counter()
    await fn()
    return time.perf_counter() - start


async def dbos_round(folder: Path, pragmas: tuple[str, ...], job: ChatJob,
                     args: argparse.Namespace) -> tuple[float, float]:
    """Seconds of DBOS's fan-out and no-op workloads, DBOS launched on `folder` (after a warm-up run of each)."""
    folder.mkdir(exist_ok=True)
    with dbos_on_sqlite(folder, pragmas=pragmas):
        await run_many(dbos_chat_run, job, 1)
        await run_many(dbos_noop_run, args.steps, 1)
        fan = await timed(lambda: run_many(dbos_chat_run, job, args.workflows))
        noop = await timed(lambda: run_many(dbos_noop_run, args.steps, args.noop_workflows))
    return fan, noop


async def main(args: argparse.Namespace) -> None:
    remote = watch_connections()
    configs = [c.strip() for c in args.dbos.split(",")]
    times: dict[str, list[float]] = {}

    def note(key: str, seconds: float) -> None:
        times.setdefault(key, []).append(seconds)

    model = ChatServer(default=chat_reply("OK", delay=args.latency))
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as dev, model:
        job = ChatJob(model=model.model("bench"), prompt="Say OK.", calls=args.calls)
        await harness.tether_round(dev.address, 1, args.steps)  # warm-up: sandbox, connections
        for _ in range(args.rounds):
            note("tether fan-out", await tether_round(dev.address, model, args.workflows, args.calls, args.workflows))
            note("tether no-op", await harness.tether_round(dev.address, args.noop_workflows, args.steps))
            for name in configs:
                fan, noop = await dbos_round(Path(tmp) / f"dbos-{name}", DBOS_CONFIGS[name], job, args)
                note(f"{name} fan-out", fan)
                note(f"{name} no-op", noop)
    med = {key: statistics.median(v) for key, v in times.items()}
    report(med, configs, args)
    print(f"non-loopback connections during the run: {len(remote)}" + (f" {remote}" if remote else ""))


def report(med: dict[str, float], configs: list[str], args: argparse.Namespace) -> None:
    """The table: seconds per system and tether/DBOS ratios, one row per workload."""
    labels = {"wal": "DBOS (WAL)", "stock": "DBOS (stock)"}
    print(f"tether vs DBOS 3.x on SQLite, median of {args.rounds} alternating rounds; both in this process, "
          f"tether with one worker on its embedded dev server (WAL pragmas)")
    head = f"{'workload':44} {'tether':>9}" + "".join(f" {labels[c]:>13}" for c in configs)
    head += "".join(f" {'tether/' + labels[c].split()[1][1:-1]:>13}" for c in configs)
    print(head)
    rows = [("fan-out", f"{args.workflows} runs x {args.calls} calls, {args.latency * 1000:.0f} ms model"),
            ("no-op", f"{args.noop_workflows} runs x {args.steps} no-op steps")]
    for key, name in rows:
        t = med[f"tether {key}"]
        line = f"{name:44} {t:8.2f}s" + "".join(f" {med[f'{c} {key}']:12.2f}s" for c in configs)
        line += "".join(f" {t / med[f'{c} {key}']:13.2f}" for c in configs)
        print(line)
    steps = args.noop_workflows * args.steps
    print(f"no-op steps/s: tether {steps / med['tether no-op']:.0f}"
          + "".join(f", {labels[c]} {steps / med[f'{c} no-op']:.0f}" for c in configs))
    first = configs[0]
    ratio = med["tether fan-out"] / med[f"{first} fan-out"]
    verdict = "ok" if ratio <= TARGET else "OVER TARGET"
    print(f"fan-out tether/{labels[first]}: {ratio:.2f}  {verdict} (target <= {TARGET})")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dbos", default="wal,stock", help="DBOS SQLite settings to compare: wal, stock or both")
    p.add_argument("--workflows", type=int, default=200, help="concurrent runs of the fan-out workload")
    p.add_argument("--calls", type=int, default=3, help="sequential model calls per fan-out run")
    p.add_argument("--latency", type=float, default=0.2, help="seconds the loopback model takes to answer")
    p.add_argument("--noop-workflows", type=int, default=harness.WORKFLOWS)
    p.add_argument("--steps", type=int, default=harness.STEPS, help="no-op steps per run")
    a = p.parse_args()
    bad = [c for c in a.dbos.split(",") if c.strip() not in DBOS_CONFIGS]
    if bad:
        p.error(f"--dbos: unknown setting {bad[0]!r}; use wal, stock or wal,stock")
    asyncio.run(main(a))
