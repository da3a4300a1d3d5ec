"""Chaos: N runs of an 8-step order workflow while workers are SIGKILLed, one is SIGTERMed and the
Temporal server is killed and restarted. Prints what survived.

    .venv/bin/python -m benchmarks.chaos [--runs 200] [--kills 5] [--no-sigterm] [--no-restart]

Two main worker processes and one zone `vault` worker (restarted by a supervisor 1 s after they
die, as an orchestrator would), a payment service and a flaky model on loopback (injected 503s),
a person answering approvals meanwhile. Reported: runs completed / failed (by cause) / lost;
completed steps run again; finished step bodies whose result was thrown away (by SIGKILL, which
cannot be helped, and by SIGTERM, which must be 0); duplicate charges with and without
`tether.idempotency_key()`; recovery latency after a SIGKILL (kill to the retry's start, p50/p95);
time to progress after the server restart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType

import tether
from benchmarks.chaos_app import Order, process_order
from tether.engine.devserver import DevServer, free_port
from tether.testing import ChatServer, Received, Reply, chat_error, chat_reply

QUEUE = "chaos"


class PaymentService:
    """A payment API on loopback: fails 15% of calls with 503 before charging, charges, then
    takes 300 ms to answer (a kill in that window cuts a step off after its effect). Charges
    that carry an idempotency key already seen are not applied again."""

    def __init__(self, fail_rate: float = 0.15) -> None:
        self.applied: Counter[tuple[str, str]] = Counter()
        self.keys: dict[str, str] = {}
        self.lock = threading.Lock()
        self.rng = random.Random(7)
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with service.lock:
                    fail = service.rng.random() < fail_rate
                    if not fail:
                        charge = service.charge(body)
                if fail:
                    self.send_response(503)
                    self.end_headers()
                    return
                time.sleep(0.3)
                data = json.dumps({"charge": charge}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the caller's worker was killed while we answered
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/charge"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def charge(self, body: dict[str, Any]) -> str:
        key = body.get("key")
        if key and key in self.keys:
            return self.keys[key]
        self.applied[(body["order"], body["kind"])] += 1
        charge_id = f"ch-{body['order']}-{body['kind']}-{self.applied[(body['order'], body['kind'])]}"
        if key:
            self.keys[key] = charge_id
        return charge_id

    def stop(self) -> None:
        self.server.shutdown()


def flaky_model(seed: int = 11) -> Any:
    rng = random.Random(seed)

    def answer(_: Received) -> Reply:
        return chat_error(503, "overloaded") if rng.random() < 0.1 else chat_reply("ok", delay=0.05)

    return answer


class Workers:
    """Worker processes by slot; a supervisor restarts a slot 1 s after its process died."""

    def __init__(self, address: str, logs: Path) -> None:
        self.address, self.logs = address, logs
        self.slots: dict[str, subprocess.Popen[bytes]] = {}
        self.started = 0

    def spawn(self, slot: str) -> None:
        queues = "vault" if slot == "vault" else "main"
        cmd = [sys.executable, "-m", "tether", "worker", "benchmarks.chaos_app", "--address", self.address,
               "--task-queue", QUEUE, "--queues", queues, "--allow-plaintext"]
        log = open(self.logs / f"worker-{self.started}.log", "wb")  # noqa: SIM115 (the child owns it)
        self.started += 1
        self.slots[slot] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

    async def supervise(self) -> None:
        while True:
            for slot, proc in list(self.slots.items()):
                if proc.poll() is not None:
                    await asyncio.sleep(1.0)
                    self.spawn(slot)
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        for proc in self.slots.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@dataclass
class Journal:
    rows: list[tuple[float, str, str, str, str, int, int]] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Journal:
        rows = []
        for line in path.read_text().splitlines() if path.exists() else []:
            t, event, run, act, step, attempt, pid = line.split()
            rows.append((float(t), event, run, act, step, int(attempt), int(pid)))
        return cls(rows)


@dataclass
class Report:
    runs: int
    completed: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    reran: int = 0
    thrown_away_kill: int = 0
    thrown_away_sigterm: int = 0
    thrown_away_outage: int = 0
    dup_keyed: int = 0
    dup_plain: int = 0
    recovery: list[float] = field(default_factory=list)
    restart_progress: float | None = None
    kills: int = 0
    sigterms: int = 0
    restarts: int = 0
    seconds: float = 0.0


async def _answer_tasks(client: tether.Client) -> None:
    while True:
        try:
            for task in await client.tasks.list(task_queue=QUEUE):
                with contextlib.suppress(tether.TetherError):
                    await client.tasks.answer(task.id, True, by="chaos", timeout=5)
        except Exception:  # the server is down for a moment: try again
            pass
        await asyncio.sleep(0.5)


async def _busy_worker(workers: Workers, journal: Path) -> tuple[str, subprocess.Popen[bytes]] | None:
    """A main worker with a step body in flight (so the kill cuts something off), waiting up to
    15 s for one (workers still starting, or every run waiting for a person or the vault)."""
    for _ in range(300):
        rows = Journal.read(journal).rows
        open_bodies = {(r[2], r[3], r[5]): r[6] for r in rows if r[1] == "start"}
        for r in rows:
            if r[1] in ("done", "fail"):
                open_bodies.pop((r[2], r[3], r[5]), None)
        pids = set(open_bodies.values())
        for slot, proc in workers.slots.items():
            if slot != "vault" and proc.poll() is None and proc.pid in pids:
                return slot, proc
        await asyncio.sleep(0.05)
    return None


async def chaos(runs: int = 200, kills: int = 5, sigterm: bool = True, restart: bool = True,
                workdir: Path | None = None, deadline: float = 900) -> Report:
    """Run the chaos scenario and measure it (see the module docstring)."""
    tmp = Path(workdir or tempfile.mkdtemp(prefix="tether-chaos-"))
    journal, logs = tmp / "journal", tmp / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = DevServer(tmp / "state", port=port, ui_port=0).start()
    pay = PaymentService()
    model = ChatServer(default=flaky_model()).start()
    workers = Workers(server.address, logs)
    report = Report(runs=runs)
    killed: list[tuple[float, int]] = []
    sigtermed: dict[int, float] = {}
    restarted_at: float | None = None
    outage_from: float | None = None
    background: list[asyncio.Task[None]] = []
    try:
        client = await tether.Client.connect(server.address, task_queue=QUEUE)
        for slot in ("main-1", "main-2", "vault"):
            workers.spawn(slot)
        background += [asyncio.create_task(workers.supervise()), asyncio.create_task(_answer_tasks(client))]
        started = time.monotonic()
        orders = [Order(id=f"o{i}", amount=10 + i, pay_url=pay.url, journal=str(journal), model=model.model("m"))
                  for i in range(runs)]
        handles = [await client.start(process_order, o, id=f"chaos-{o.id}") for o in orders]
        results = asyncio.ensure_future(asyncio.gather(*(_outcome(h) for h in handles)))
        # kills and the SIGTERM first, the server restart last: recovery after a kill is measured
        # without an outage in the way (the restart's own figure is progress after it)
        faults = ["kill"] * kills + (["sigterm"] if sigterm else [])
        big = runs >= 100  # a small run (the test suite's) is over in ~20 s: faults come faster
        if big:
            faults.insert(len(faults) // 2 + 1, "pause")
        faults += (["pause"] * (3 if big else 0) + ["restart"]) if restart else []
        for i, fault in enumerate(faults):
            # a small run's steps are over in seconds: its first fault comes early, while they run
            await asyncio.wait({results}, timeout=4.0 if big else 0.5 if i == 0 else 2.0)
            if results.done():
                break
            if fault == "pause":
                continue
            if fault == "restart":
                server.kill()
                outage_from = time.time()
                await asyncio.sleep(2.0)
                server = DevServer(tmp / "state", port=port, ui_port=0).start()
                restarted_at = time.time()
                report.restarts += 1
                continue
            busy = await _busy_worker(workers, journal)
            if busy is None and fault == "sigterm":  # a graceful stop is worth testing even when idle
                busy = next(((s, p) for s, p in workers.slots.items() if s != "vault" and p.poll() is None), None)
            if busy is None:
                continue
            _, proc = busy
            if fault == "kill":
                proc.kill()
                killed.append((time.time(), proc.pid))
                report.kills += 1
            else:
                proc.send_signal(signal.SIGTERM)
                sigtermed[proc.pid] = time.time()
                report.sigterms += 1
        done, _ = await asyncio.wait({results}, timeout=deadline)
        outcomes = results.result() if done else [await _peek(h) for h in handles]
        report.seconds = time.monotonic() - started
        for outcome in outcomes:
            if outcome == "completed":
                report.completed += 1
            elif outcome == "running":
                report.lost += 1
            else:
                report.failed[outcome] += 1
        outage = (outage_from, (restarted_at or outage_from) + 15) if outage_from else None
        await _count_reruns(client, handles, Journal.read(journal), report, sigtermed, outage)
    finally:
        for task in background:
            task.cancel()
        workers.stop()
        model.stop()
        pay.stop()
        server.stop()
    rows = Journal.read(journal).rows
    report.recovery = _recovery(rows, killed)
    if restarted_at is not None:
        after = [r[0] for r in rows if r[0] > restarted_at]
        report.restart_progress = (min(after) - restarted_at) if after else None
    report.dup_keyed = sum(1 for (_, kind), n in pay.applied.items() if kind == "keyed" and n > 1)
    report.dup_plain = sum(1 for (_, kind), n in pay.applied.items() if kind == "plain" and n > 1)
    return report


async def _outcome(handle: tether.Run[Any]) -> str:
    try:
        await handle.result()
        return "completed"
    except tether.RunFailed as exc:
        return str(exc).split(": ", 1)[-1][:120]
    except tether.TetherError as exc:
        return type(exc).__name__


async def _peek(handle: tether.Run[Any]) -> str:
    status = (await handle.describe()).status
    return "completed" if status == "completed" else ("running" if status == "running" else status)


async def _count_reruns(client: tether.Client, handles: list[tether.Run[Any]], journal: Journal, report: Report,
                        sigtermed: dict[int, float], outage: tuple[float, float] | None) -> None:
    """Compare step bodies in the journal with the attempts the engine recorded as completing."""
    completed_attempt: dict[tuple[str, str], int] = {}
    for h in handles:
        started: dict[int, int] = {}
        scheduled: dict[int, str] = {}
        raw = client.temporal.get_workflow_handle(h.id)
        async for ev in raw.fetch_history_events():
            if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[ev.event_id] = ev.activity_task_scheduled_event_attributes.activity_id
            elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started[ev.event_id] = ev.activity_task_started_event_attributes.attempt
            elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                a = ev.activity_task_completed_event_attributes
                completed_attempt[(h.id, scheduled[a.scheduled_event_id])] = started[a.started_event_id]
    for at, event, run, act, _, attempt, pid in journal.rows:
        done_at = completed_attempt.get((run, act))
        if done_at is None:
            continue
        if event == "start" and attempt > done_at:
            report.reran += 1
        elif event == "done" and attempt != done_at:
            if pid in sigtermed and at >= sigtermed[pid]:  # finished during the graceful shutdown
                report.thrown_away_sigterm += 1
            elif outage is not None and outage[0] - 1 <= at <= outage[1]:
                report.thrown_away_outage += 1  # finished while the server was down: not recorded
            else:
                report.thrown_away_kill += 1


def _recovery(rows: list[tuple[float, str, str, str, str, int, int]], killed: list[tuple[float, int]]) -> list[float]:
    """Seconds from each SIGKILL to the retry of every step body it cut off.

    A body the kill cut off either had not finished, or had finished (written `done`) without its
    result reaching the engine yet: the engine retries both. A body that failed on its own is
    retried too, but not because of the kill, so it is left out."""
    failed = {(r[2], r[3], r[5]) for r in rows if r[1] == "fail"}
    out = []
    for at, pid in killed:
        cut = {(r[2], r[3], r[5]) for r in rows if r[1] == "start" and r[6] == pid and r[0] <= at} - failed
        for run, act, attempt in cut:
            retries = [r[0] for r in rows if r[1] == "start" and (r[2], r[3]) == (run, act) and r[5] > attempt]
            if retries:
                out.append(min(retries) - at)
    return out


def print_report(r: Report) -> None:
    """The chaos report, one figure a line."""
    def pct(values: list[float], q: float) -> str:
        if not values:
            return "-"
        return f"{statistics.quantiles(values, n=100)[int(q) - 1]:.1f}s" if len(values) > 1 else f"{values[0]:.1f}s"

    print(f"chaos: {r.runs} runs of an 8-step workflow, {r.kills} worker SIGKILLs, {r.sigterms} SIGTERM, "
          f"{r.restarts} server restart; {r.seconds:.0f}s")
    print(f"runs completed / failed / lost:            {r.completed} / {sum(r.failed.values())} / {r.lost}")
    for cause, n in r.failed.most_common():
        print(f"  failed: {n} x {cause}")
    print(f"completed steps run again:                 {r.reran}")
    print(f"finished bodies thrown away by SIGTERM:    {r.thrown_away_sigterm}")
    print(f"finished bodies not recorded otherwise:    {r.thrown_away_kill}  (a SIGKILL after their effect, "
          "or an attempt the engine had already timed out)")
    print(f"finished bodies lost to the server outage: {r.thrown_away_outage}  (finished while it was down)")
    print(f"duplicate charges with idempotency key:    {r.dup_keyed}")
    print(f"duplicate charges without a key:           {r.dup_plain}")
    print(f"recovery after SIGKILL p50 / p95:          {pct(r.recovery, 50)} / {pct(r.recovery, 95)}  "
          f"({len(r.recovery)} cut-off attempts: {', '.join(f'{x:.1f}' for x in sorted(r.recovery))})")
    progress = f"{r.restart_progress:.1f}s" if r.restart_progress is not None else "-"
    print(f"progress after the server restart:         {progress}")


def main() -> None:
    import logging

    logging.getLogger("temporalio").setLevel(logging.ERROR)  # the outage's connection retries
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--no-sigterm", action="store_true")
    p.add_argument("--no-restart", action="store_true")
    a = p.parse_args()
    report = asyncio.run(chaos(a.runs, a.kills, not a.no_sigterm, not a.no_restart))
    print_report(report)
    os._exit(0 if report.lost == 0 and report.reran == 0 and report.dup_keyed == 0 else 1)


if __name__ == "__main__":
    main()
