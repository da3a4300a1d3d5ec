"""Live tokens: how fast they reach a watcher, what they cost in history and in step time.

A loopback OpenAI-compatible model streams a reply of `--tokens` pieces at `--rate` pieces/s to a
workflow's model step; a watcher follows the run with `Run.events()`. Reports:

- latency from a piece leaving the model server to the watcher (p50/p95; target p95 <= 300 ms);
- extra history bytes per 1,000 tokens with streaming on vs off (target <= 2x the text), and,
  for comparison, the same text published through Temporal's `contrib.workflow_streams`
  (signals, 100 ms batches) vs the same workflow publishing nothing;
- model-step time, streaming on vs off: `--runs` concurrent runs of one call to a model that
  writes 100 tokens at `--rate` (not streamed, its reply comes when all are written),
  alternating rounds (target <= 1.10).

    .venv/bin/python -m benchmarks.streaming [--tokens 1000] [--rate 100] [--runs 8] [--rounds 5] [--split]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from typing import Any

from temporalio.client import Client as TemporalClient
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker import Worker as TemporalWorker

import tether
from benchmarks import streaming_app as app
from benchmarks.chat_process import ChatProcess, words
from benchmarks.harness import _timed, alternate
from tether import settings
from tether.engine import liveness
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.llm import _providers
from tether.testing import ChatServer
from tether.testing.chat_server import reply


def _pieces(n: int) -> list[str]:
    return words(n)


async def _history_bytes(client: TemporalClient, workflow_id: str) -> int:
    return sum([e.ByteSize() async for e in client.get_workflow_handle(workflow_id).fetch_history_events()])


async def _client(address: str) -> tether.Client:
    conn = Connection(address=address, task_queue=f"bench-stream-{uuid.uuid4().hex[:8]}", telemetry=False)
    return tether.Client(await conn.connect(), conn)


async def latency_and_history(address: str, n: int, rate: float) -> dict[str, float]:
    pieces = _pieces(n)
    text = "".join(pieces)
    out: dict[str, float] = {"text_bytes": len(text.encode())}
    with ChatServer(default=reply(text, chunks=pieces, chunk_delay=1 / rate)) as chat:
        for stream in (True, False):
            client = await _client(address)
            with settings.override(stream=stream):
                async with tether.Worker(client, workflows=[app.bench_stream_write]):
                    chat.sent.clear()
                    run = await client.start(app.bench_stream_write, chat.model("bench"))
                    got: list[tuple[float, int]] = []  # (arrival, characters received so far)
                    chars = 0
                    async for ev in run.events():
                        if ev.kind == "tokens" and not (ev.data or {}).get("from_result"):
                            chars += len(ev.text or "")
                            got.append((time.monotonic(), chars))
                    assert await run.result() == text
            out["history_on" if stream else "history_off"] = await _history_bytes(client.temporal, run.id)
            if stream:
                out.update(_latencies(chat.sent, got))
    return out


def _latencies(sent: list[tuple[float, str]], got: list[tuple[float, int]]) -> dict[str, float]:
    delays, end, j = [], 0, 0
    for at, piece in sent:
        end += len(piece)
        while j < len(got) and got[j][1] < end:
            j += 1
        if j < len(got):
            delays.append(got[j][0] - at)
    delays.sort()
    return {"p50": statistics.median(delays), "p95": delays[int(0.95 * (len(delays) - 1))],
            "seen": len(delays) / len(sent)}


async def workflow_streams_history(address: str, n: int, rate: float) -> tuple[int, int]:
    """History bytes of the same text through contrib.workflow_streams, and of the same run publishing nothing."""
    client = await TemporalClient.connect(address)
    queue = f"raw-stream-{uuid.uuid4().hex[:8]}"
    sizes = []
    async with TemporalWorker(client, task_queue=queue, workflows=[app.BenchStreamRaw],
                              activities=[app.bench_stream_publish], workflow_runner=UnsandboxedWorkflowRunner()):
        for publish in (True, False):
            wid = f"raw-stream-{uuid.uuid4().hex[:8]}"
            await client.execute_workflow("bench_stream_raw", args=[_pieces(n), 1 / rate, publish], id=wid,
                                          task_queue=queue)
            sizes.append(await _history_bytes(client, wid))
    return sizes[0], sizes[1]


async def _overhead_round(address: str, model: str, runs: int, stream: bool, publish: bool = True) -> float:
    client = await _client(address)
    real = liveness.publish
    if not publish:  # the provider streams, tether publishes nothing: the SDK's share of the cost
        liveness.publish = lambda kind, fields: None
    try:
        with settings.override(stream=stream):
            async with tether.Worker(client, workflows=[app.bench_stream_write]):
                return await _timed(lambda: asyncio.gather(*(client.run(app.bench_stream_write, model)
                                                             for _ in range(runs))))
    finally:
        liveness.publish = real


async def main(n: int, rate: float, runs: int, rounds: int, split: bool = False) -> None:
    _providers.preload(["openai-compatible"])
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as server:
        lat = await latency_and_history(server.address, n, rate)
        ws_on, ws_off = await workflow_streams_history(server.address, n, rate)
        with ChatProcess(100, 1 / rate) as chat:  # a provider is not in the worker's process
            model = chat.model("bench")
            t_on, t_off = await alternate(rounds, lambda: _overhead_round(server.address, model, runs, True),
                                          lambda: _overhead_round(server.address, model, runs, False))
        t_split = 0.0
        if split:
            with ChatProcess(100, 1 / rate) as chat:
                model = chat.model("bench")
                t_quiet, t_off2 = await alternate(
                    rounds, lambda: _overhead_round(server.address, model, runs, True, publish=False),
                    lambda: _overhead_round(server.address, model, runs, False))
                t_split = t_quiet / t_off2
    text, per = lat["text_bytes"], 1000 / n
    extra = (lat["history_on"] - lat["history_off"]) * per
    ws_extra = (ws_on - ws_off) * per
    print(f"reply: {n} tokens ({text:.0f} bytes of text) at {rate:g} tokens/s from a loopback model")
    print(f"latency model -> watcher: p50 {lat['p50'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms "
          f"({lat['seen']:.0%} of pieces seen live)  (target p95 <= 300 ms)")
    print(f"history per 1,000 tokens: streaming on {lat['history_on'] * per:,.0f} B, "
          f"off {lat['history_off'] * per:,.0f} B -> extra {extra:,.0f} B = {extra / (text * per):.2f}x the text"
          "  (target <= 2x)")
    print(f"  contrib.workflow_streams, same text, 100 ms batches: extra {ws_extra:,.0f} B per 1,000 "
          f"tokens = {ws_extra / (text * per):.1f}x the text")
    print(f"model step (100 tokens at {rate:g}/s), {runs} concurrent runs x 1 call, median of {rounds} "
          f"alternating rounds: streaming on {t_on:.2f}s, off {t_off:.2f}s, ratio {t_on / t_off:.3f}  (target <= 1.10)")
    if split:
        print(f"  the provider streaming but tether publishing nothing, vs off: {t_split:.3f} (the SDK's share)")


def _args() -> Any:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=1000)
    p.add_argument("--rate", type=float, default=100.0)
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--split", action="store_true", help="also time the provider streaming with tether publishing "
                                                         "nothing (the provider SDK's share of the cost)")
    return p.parse_args()


if __name__ == "__main__":
    a = _args()
    asyncio.run(main(a.tokens, a.rate, a.runs, a.rounds, a.split))
