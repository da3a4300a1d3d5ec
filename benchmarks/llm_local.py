"""Local model throughput: tokens/s of `llm.chat("local:smollm2")` inside a workflow vs calling
llama-cpp-python directly on the same prompt, same process, alternating rounds. Target >= 0.9.

    .venv/bin/python -m benchmarks.llm_local [--tokens 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid

import tether
from benchmarks.llm_workloads import ChatDone, ChatJob, bench_llm_chat
from tether import llm
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.llm import _local

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."


def direct_round(llama: object, max_tokens: int) -> float:
    """Tokens/s of one llama-cpp-python chat completion, called directly."""
    start = time.perf_counter()
    out = llama.create_chat_completion(  # type: ignore[attr-defined]
        messages=[{"role": "user", "content": PROMPT}], max_tokens=max_tokens, temperature=0.0)
    return float(out["usage"]["completion_tokens"]) / (time.perf_counter() - start)


async def tether_round(client: tether.Client, max_tokens: int) -> float:
    """Tokens/s of the same completion as a durable model step inside a workflow run."""
    start = time.perf_counter()
    job = ChatJob(model="local:smollm2", prompt=PROMPT, max_tokens=max_tokens)
    done: ChatDone = await client.run(bench_llm_chat, job)
    return done.output_tokens / (time.perf_counter() - start)


async def main(max_tokens: int, rounds: int) -> None:
    import llama_cpp

    path = str(_local.model_path(llm.parse_model("local:smollm2")))
    direct = llama_cpp.Llama(model_path=path, n_ctx=4096, verbose=False)  # same settings as tether's
    with tempfile.TemporaryDirectory() as tmp, DevServer(tmp, port=0, ui_port=0) as server:
        conn = Connection(address=server.address, task_queue=f"bench-llm-{uuid.uuid4().hex[:8]}")
        client = tether.Client(await conn.connect(), conn)
        async with tether.Worker(client, workflows=[bench_llm_chat], steps=[llm.call_model]):
            await tether_round(client, 16)  # warm-up: loads the model in the worker
            direct_round(direct, 16)
            t, d = [], []
            for _ in range(rounds):
                d.append(direct_round(direct, max_tokens))
                t.append(await tether_round(client, max_tokens))
    td, tt = statistics.median(d), statistics.median(t)
    print(f"workload: SmolLM2-135M Q4_1, {max_tokens} output tokens, median of {rounds} alternating rounds")
    print(f"llama-cpp-python direct:        {td:.1f} tokens/s")
    print(f"llm.chat in a workflow (step):  {tt:.1f} tokens/s")
    print(f"ratio tether/direct: {tt / td:.3f}  (target >= 0.9)")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    asyncio.run(main(a.tokens, a.rounds))
