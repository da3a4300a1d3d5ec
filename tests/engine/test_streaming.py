"""Live runs: a model's tokens and a step's progress reach `Run.events()` while the step runs,
a watcher that reconnects misses nothing and sees nothing twice, and a killed worker's
stream picks up again with the retried attempt."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import tether
from tests.apps import streaming
from tests.engine.test_cli import REPO, tether_cmd
from tether.engine.devserver import free_port
from tether.llm import _providers
from tether.testing import ChatServer, eventually, run_worker_process, unique_queue
from tether.testing.chat_server import Received, Reply, reply

# not in the first call: seconds of imports would hold its heartbeats
_providers.preload(["openai-compatible", "anthropic", "mistral"])

STORY = ("Once upon a time a ledger balanced itself, and every invoice found its purchase order; "
         "the auditors, astonished, wrote it all down twice and went home early.")


def _joined(events: list[tether.RunEvent], attempt: int | None = None) -> str:
    return "".join(e.text or "" for e in events if e.kind == "tokens" and (attempt is None or e.attempt == attempt))


Seen = list[tuple[float, tether.RunEvent]]


async def _watch(run: tether.Run[Any], after: str | None = None, *, stop: Any = None) -> Seen:
    seen: Seen = []
    async for ev in run.events(after=after):
        seen.append((time.monotonic(), ev))
        if stop is not None and stop(seen):
            break
    return seen


async def test_tokens_arrive_while_the_model_writes_and_join_into_its_text(tether_client: tether.Client) -> None:
    with ChatServer() as chat:
        chat.script(reply(STORY, chunk_delay=0.08))  # ~25 pieces over ~2 s
        async with tether.Worker(tether_client):
            run = await tether_client.start(streaming.streaming_write, chat.model("story"))
            seen = await _watch(run)
            result = await run.result()
    events = [e for _, e in seen]
    kinds = [e.kind for e in events]
    assert result == STORY
    assert kinds[0] == "step.scheduled" and kinds[-1] == "run.completed", kinds
    assert kinds.index("step.started") < kinds.index("tokens") < kinds.index("step.completed")
    assert _joined(events) == STORY
    live = [(t, e) for t, e in seen if e.kind == "tokens" and not e.data]
    completed_at = next(t for t, e in seen if e.kind == "step.completed")
    assert len(live) >= 5, [e.text for _, e in live]  # streamed in pieces, not handed over at the end
    assert live[0][0] < completed_at - 1.0  # the first tokens came a second or more before the step ended
    assert all(e.model == chat.model("story") and e.attempt == 1 for _, e in live)
    assert len({e.offset for e in events}) == len(events)


@pytest.mark.parametrize("provider", ["anthropic", "mistral"])
async def test_anthropic_and_mistral_models_stream_their_tokens_too(tether_client: tether.Client, provider: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # the loopback server speaks Anthropic's Messages API (its own SSE events) and Mistral's chat API
    with ChatServer() as chat:
        monkeypatch.setenv(f"{provider.upper()}_BASE_URL", chat.root)
        monkeypatch.setenv(f"{provider.upper()}_API_KEY", "test-key")
        chat.script(reply(STORY, chunk_delay=0.08))
        model = f"{provider}:story-model"
        async with tether.Worker(tether_client):
            run = await tether_client.start(streaming.streaming_write, model)
            seen = await _watch(run)
            result = await run.result()
    assert result == STORY
    assert chat.requests[0].path == ("/v1/messages" if provider == "anthropic" else "/v1/chat/completions")
    assert chat.requests[0].body.get("stream") is True
    events = [e for _, e in seen]
    assert _joined(events) == STORY
    live = [(t, e) for t, e in seen if e.kind == "tokens" and not e.data]
    completed_at = next(t for t, e in seen if e.kind == "step.completed")
    assert len(live) >= 5 and live[0][0] < completed_at - 1.0, [e.text for _, e in live]
    assert all(e.model == model for _, e in live)


async def test_a_watcher_that_reconnects_misses_nothing_and_sees_nothing_twice(tether_client: tether.Client) -> None:
    with ChatServer() as chat:
        chat.script(reply(STORY, chunk_delay=0.08))
        async with tether.Worker(tether_client):
            run = await tether_client.start(streaming.streaming_write, chat.model("story"))
            whole = asyncio.ensure_future(_watch(run))
            # drop the connection after three pieces, twice: once mid-stream, once for good
            first = await _watch(run, stop=lambda s: sum(e.kind == "tokens" for _, e in s) == 3)
            second = await _watch(run, first[-1][1].offset, stop=lambda s: sum(e.kind == "tokens" for _, e in s) == 2)
            await run.result()
            third = await _watch(run, second[-1][1].offset)  # after the run ended: the rest, from history
            reference = [e for _, e in await whole]
    resumed = [e for _, e in first + second + third]
    assert _joined(resumed) == STORY == _joined(reference)
    kinds = [e.kind for e in resumed if e.kind != "tokens"]
    assert kinds == [e.kind for e in reference if e.kind != "tokens"]
    assert kinds.count("step.started") == 1 and kinds.count("run.completed") == 1
    assert len({e.offset for e in resumed}) == len(resumed)


async def test_progress_notes_and_steps_as_they_happen(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(streaming.streaming_read, 5)
        seen = await _watch(run)
    events = [e for _, e in seen]
    progress = [e for e in events if e.kind == "progress"]
    assert progress, [e.kind for e in events]
    assert progress[-1].text == "parsed 5 of 5 pages" and (progress[-1].done, progress[-1].total) == (5, 5)
    done = [p.done or 0 for p in progress]
    assert done == sorted(set(done))  # in order, none twice
    assert len(progress) >= 3  # seen as it went, not only the last one
    kinds = [e.kind for e in events]
    assert kinds.index("progress") < kinds.index("step.completed") < kinds.index("note") < kinds.index("run.completed")
    assert next(e for e in events if e.kind == "note").text == "read 5 pages"
    assert next(e for e in events if e.kind == "run.completed").data == 5


async def test_a_killed_workers_stream_goes_on_with_the_retried_attempt(tether_client: tether.Client) -> None:
    conn = tether_client.connection
    env = dict(os.environ)
    killed: list[bool] = []

    def story(r: Received) -> Reply:  # the first attempt writes slowly (~6 s): its worker dies mid-stream
        return reply(STORY, chunk_delay=0.25 if not killed else 0.05)

    with ChatServer(default=story) as chat:
        first = run_worker_process("tests.apps.streaming", address=conn.address, task_queue=conn.task_queue, env=env)
        second = None
        try:
            run = await tether_client.start(streaming.streaming_write, chat.model("story"))
            seen: list[tether.RunEvent] = []

            async def watch() -> None:
                async for ev in run.events():
                    seen.append(ev)

            watching = asyncio.ensure_future(watch())

            async def some_tokens() -> None:
                assert sum(e.kind == "tokens" for e in seen) >= 3

            await eventually(some_tokens, timeout=60)
            first.kill()
            first.wait()
            killed.append(True)
            second = run_worker_process("tests.apps.streaming", address=conn.address, task_queue=conn.task_queue,
                                        env=env)
            await asyncio.wait_for(watching, 90)
            assert await run.result() == STORY
        finally:
            for p in (first, second):
                if p is not None and p.poll() is None:
                    p.kill()
                    p.wait()
    kinds = [e.kind for e in seen]
    cut = next(e.attempt or 0 for e in seen if e.kind == "tokens")  # the attempt whose worker was killed
    before = _joined(seen, attempt=cut)
    assert before and STORY.startswith(before) and before != STORY  # cut off mid-stream
    last = max(e.attempt or 0 for e in seen if e.kind == "tokens")
    retry = next(e for e in seen if e.kind == "step.retrying" and e.attempt == cut + 1)
    assert last > cut and seen.index(retry) > kinds.index("tokens")
    assert _joined(seen, attempt=last) == STORY  # the retried attempt's tokens start afresh, marked
    assert kinds[-1] == "run.completed"


async def test_a_bad_offset_is_one_clear_error(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(streaming.streaming_read, 1)
        with pytest.raises(tether.UsageError, match="not an event offset"):
            async for _ in run.events(after="nonsense"):
                pass
        await run.result()


def test_tether_run_prints_tokens_and_progress_as_they_come(tether_server: Any) -> None:
    def target() -> list[str]:  # a queue of its own per command: a worker that just left still looks present
        return ["--address", tether_server.address, "--task-queue", unique_queue("cli-live")]

    with ChatServer(default=reply(STORY, chunk_delay=0.03)) as chat:
        story = subprocess.run([sys.executable, "-m", "tether", "run", "tests.apps.streaming:streaming_write",
                                "--input", json.dumps(chat.model("story")), *target()],
                               capture_output=True, text=True, timeout=120)
    assert story.returncode == 0, story.stderr
    assert f"» {STORY}\n" in story.stderr and chat.model("story") in story.stderr  # one line, as it came
    pages = subprocess.run([sys.executable, "-m", "tether", "run", "tests.apps.streaming:streaming_read",
                            "--input", "4", *target()], capture_output=True, text=True, timeout=120)
    assert pages.returncode == 0, pages.stderr
    assert "… streaming_pages: parsed 4 of 4 pages (4/4)" in pages.stderr


def test_tether_dev_prints_each_new_run_as_it_goes(tmp_path: Path) -> None:
    port = free_port()
    with ChatServer(default=reply(STORY, chunk_delay=0.03)) as chat:
        dev = subprocess.Popen([sys.executable, "-m", "tether", "dev", "tests/apps/streaming.py", "--port", str(port),
                                "--ui-port", "0", "--no-studio", "--state-dir", str(tmp_path / "state")],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            lines = _read_until(dev, "ready")
            story = tether_cmd("run", "tests.apps.streaming:streaming_write", "--input",
                               json.dumps(chat.model("story")), "--state-dir", str(tmp_path / "state"))
            assert story.returncode == 0, story.stderr
            pages = tether_cmd("run", "tests.apps.streaming:streaming_read", "--input", "4",
                               "--state-dir", str(tmp_path / "state"))
            assert pages.returncode == 0, pages.stderr
            lines += _read_until(dev, "■ completed", count=2)
        finally:
            dev.send_signal(signal.SIGINT)
            dev.wait(30)
    shown = "".join(lines)
    assert "] ▶ streaming_write\n" in shown and "] ▶ streaming_read\n" in shown, shown
    assert f"» {STORY}\n" in shown, shown  # the model's tokens, on one line as they came
    assert "… streaming_pages: parsed 4 of 4 pages (4/4)" in shown and "✓ streaming_pages" in shown, shown
    assert "]   note: read 4 pages\n" in shown and shown.count("■ completed") == 2, shown  # not the log line


def _read_until(proc: subprocess.Popen[str], marker: str, *, count: int = 1, timeout: float = 90) -> list[str]:
    """Lines of `proc`'s output up to the `count`-th one that holds `marker`."""
    assert proc.stdout is not None
    deadline, lines, seen = time.monotonic() + timeout, [], 0
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        lines.append(line)
        seen += marker in line
        if seen >= count:
            return lines
    raise AssertionError(f"no {marker!r} ({count}x) in:\n" + "".join(lines))


def test_tether_dev_follows_a_batch_live_up_to_its_cap_and_lists_the_rest(tmp_path: Path) -> None:
    from tether import settings
    from tether.cli.core import FOLLOW_LIVE
    from tether.engine.codec import ensure_dev_key

    port, n, log = free_port(), FOLLOW_LIVE + 4, tmp_path / "dev.out"

    def shown() -> str:
        return log.read_text(errors="replace")

    def wait_for(marker: str, count: int = 1, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while shown().count(marker) < count:
            assert time.monotonic() < deadline, f"no {marker!r} ({count}x) in:\n{shown()}"
            time.sleep(0.2)

    with log.open("w") as sink:  # a file, not a pipe: nothing here has to keep reading it
        dev = subprocess.Popen([sys.executable, "-m", "tether", "dev", "tests/apps/streaming.py", "--port", str(port),
                                "--ui-port", "0", "--no-studio", "--state-dir", str(tmp_path / "state")],
                               cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for("ready")

        async def batch() -> None:  # with the payload key `tether dev` made, as `tether run` would
            with settings.override(key_file=str(ensure_dev_key(tmp_path / "state"))):
                client = await tether.Client.connect(f"127.0.0.1:{port}")
                runs = await asyncio.gather(*(client.start(streaming.streaming_read, 12) for _ in range(n)))
                assert await asyncio.gather(*(r.result() for r in runs)) == [12] * n

        asyncio.run(asyncio.wait_for(batch(), 120))
        wait_for("■ completed", n, timeout=30)
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(30)
    out = shown()
    unfollowed = out.count("not followed live")
    assert out.count(" ▶ streaming_read") == n and 1 <= unfollowed <= n - FOLLOW_LIVE, out
    assert out.count("✓ streaming_pages") == n - unfollowed, out  # only the followed runs' steps
