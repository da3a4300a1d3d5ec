"""Rate limits hold across worker processes, and a provider's 429 cools the key for every worker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import tether
from benchmarks.limits import Provider, peak_window
from tests.apps import limits_flows
from tether._runtime import limit_queue
from tether.engine.limits import cool, queue_state
from tether.testing import ChatServer, chat_error, chat_reply, eventually, run_worker_process

APP = "tests.apps.limits_flows"
BURST = 2
"""What a 1-second window may hold beyond the rate: a second's worth (the engine's own burst
is spread by each worker's pacer)."""


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    with ChatServer(default=chat_reply("hi", delay=0.05)) as server:
        yield server


def _workers(client: tether.Client, n: int) -> list[subprocess.Popen[bytes]]:
    conn = client.connection
    return [run_worker_process(APP, address=conn.address, task_queue=conn.task_queue, env=dict(os.environ))
            for _ in range(n)]


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


async def _polled_by(client: tether.Client, key: str, procs: list[subprocess.Popen[bytes]]) -> None:
    queue = limit_queue(client.connection.task_queue, key)

    async def polling() -> None:
        for p in procs:
            assert p.poll() is None, p.stdout.read().decode() if p.stdout else "worker exited"
        assert (await queue_state(client.temporal, client.connection.namespace, queue)).workers == len(procs)

    await eventually(polling, timeout=60)


async def test_a_rate_limit_holds_across_two_worker_processes(tether_client: tether.Client,
                                                              chat_server: ChatServer) -> None:
    procs = _workers(tether_client, 2)
    try:
        await _polled_by(tether_client, limits_flows.PACED, procs)
        model = chat_server.model("paced")
        runs = [await tether_client.start(limits_flows.ask_model, model) for _ in range(14)]
        results = await asyncio.gather(*(r.result(timeout=90) for r in runs))
    finally:
        _stop(procs)
    assert results == ["hi"] * 14
    times = [r.at for r in chat_server.requests]
    assert len(times) == 14
    shown = str(sorted(round(t - min(times), 2) for t in times))
    # no second holds more than the limit plus a burst of a second's worth (two independent
    # workers' calls can meet), and over the run the rate is the limit
    assert peak_window(times) <= 2 + BURST, shown
    assert (len(times) - 1) / (max(times) - min(times)) <= 2.2, shown


async def test_two_workers_keep_a_provider_counting_a_rolling_second_under_its_limit(
        tether_client: tether.Client) -> None:
    # 40 calls waiting at once for a 10/s key: the engine lets a second's worth through at once,
    # and each worker's share (5 per rolling second) is what reaches the provider
    provider = Provider(10)  # the benchmark's provider: 10 per rolling second, else 429
    procs = _workers(tether_client, 2)
    try:
        with ChatServer(default=provider) as server:
            await _polled_by(tether_client, limits_flows.WINDOWED, procs)
            model = server.model("windowed")
            runs = await asyncio.gather(*(tether_client.start(limits_flows.ask_model, model) for _ in range(40)))
            results = await asyncio.gather(*(r.result(timeout=120) for r in runs))
            times = [r.at for r in server.requests]
    finally:
        _stop(procs)
    assert results == ["OK"] * 40
    shown = str(sorted(round(t - min(times), 2) for t in times))
    assert provider.refused == [], shown  # not even a first 429
    assert peak_window(times) <= 10, shown


async def test_a_429_with_retry_after_pauses_the_key_for_every_worker(tether_client: tether.Client,
                                                                      chat_server: ChatServer) -> None:
    chat_server.script(chat_error(429, "Rate limit reached", retry_after=3))
    procs = _workers(tether_client, 2)
    queue = limit_queue(tether_client.connection.task_queue, limits_flows.COOLED)
    ns = tether_client.connection.namespace
    try:
        await _polled_by(tether_client, limits_flows.COOLED, procs)
        model = chat_server.model("cooled")
        first = await tether_client.start(limits_flows.ask_model, model)

        async def cooling() -> None:
            assert (await queue_state(tether_client.temporal, ns, queue)).cooling_until is not None

        await eventually(cooling, timeout=30)
        refused_at = chat_server.requests[0].at
        # either worker may take these; none may call the model before the cooldown ends
        more = [await tether_client.start(limits_flows.ask_model, model) for _ in range(6)]
        results = await asyncio.gather(*(r.result(timeout=60) for r in [first, *more]))
        state = await queue_state(tether_client.temporal, ns, queue)
    finally:
        _stop(procs)
    assert results == ["hi"] * 7
    later = [r.at - refused_at for r in chat_server.requests[1:]]
    assert len(later) == 7
    assert min(later) >= 3 - 0.2, later  # no worker asked the model again before Retry-After ended
    assert state.cooling_until is None and state.override == 50  # lifted: back to the key's own rate


async def test_a_cooldown_is_lifted_by_any_worker_of_the_key(tether_client: tether.Client,
                                                             chat_server: ChatServer) -> None:
    queue = limit_queue(tether_client.connection.task_queue, limits_flows.COOLED)
    ns = tether_client.connection.namespace
    # set by a worker that is gone now: the one still running lifts it when it ends
    until = await cool(tether_client.temporal, ns, queue, 2.0, "HTTP 429 from a worker that died")
    procs = _workers(tether_client, 1)
    try:
        run = await tether_client.start(limits_flows.ask_model, chat_server.model("cooled"))
        assert await run.result(timeout=60) == "hi"
    finally:
        _stop(procs)
    assert datetime.fromtimestamp(_wall(chat_server.requests[0].at), UTC) >= until
    assert (await queue_state(tether_client.temporal, ns, queue)).override == 50


def _wall(monotonic_at: float) -> float:
    """A request's arrival on the wall clock (the chat server stamps them with time.monotonic())."""
    import time

    return time.time() - (time.monotonic() - monotonic_at)


async def test_a_limited_step_runs_on_its_keys_queue(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        assert await tether_client.run(limits_flows.use_api, 21) == 42
        run = await tether_client.start(limits_flows.use_api, 1)
        await run.result(timeout=30)
        detail: Any = await run.describe()
    assert [s.name for s in detail.steps] == ["call_api"]
    assert detail.steps[0].zone is None  # the limit's queue is still the main zone's


async def test_tether_limits_lists_each_key_with_its_rate_use_and_cooldown(tether_client: tether.Client,
                                                                             chat_server: ChatServer) -> None:
    conn = tether_client.connection
    queue = limit_queue(conn.task_queue, limits_flows.COOLED)
    await cool(tether_client.temporal, conn.namespace, queue, 120.0, "HTTP 429 from the provider")
    target = ["--address", conn.address, "--task-queue", conn.task_queue]

    def limits(*args: str) -> str:
        r = subprocess.run([sys.executable, "-m", "tether", "limits", APP, *args, *target], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    async with tether.Worker(tether_client):
        run = await tether_client.start(limits_flows.ask_model, chat_server.model("cooled"))

        async def waiting() -> None:  # the model step waits on the cooled key's queue
            state = await queue_state(tether_client.temporal, conn.namespace, queue)
            assert (state.workers, state.backlog) == (1, 1), state

        await eventually(waiting, timeout=30)
        rows = {row["key"]: row for row in json.loads(await asyncio.to_thread(limits, "--json"))}
        printed = await asyncio.to_thread(limits)
        await run.cancel()
    assert set(rows) == {limits_flows.PACED, limits_flows.COOLED, limits_flows.WINDOWED, "limits-test-api"}
    cooled = rows[limits_flows.COOLED]
    assert (cooled["per_second"], cooled["max_concurrent_per_worker"]) == (50, 4)
    assert (cooled["workers"], cooled["waiting"]) == (1, 1) and cooled["cooling_until"] is not None
    assert rows["limits-test-api"]["per_second"] == 5 and rows[limits_flows.PACED]["cooling_until"] is None
    assert not chat_server.requests  # nothing reached the model while the key cooled
    line = next(x for x in printed.splitlines() if "cooled" in x)
    assert "50/s" in line and "4 per worker" in line and "s left" in line and "HTTP 429 from the provider" in line
    paced = next(x for x in printed.splitlines() if "paced" in x)
    assert paced.split()[-1] == "-", paced  # the key's own rate is no cooldown
