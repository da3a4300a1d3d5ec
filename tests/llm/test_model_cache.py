"""The development model-call cache: identical calls are answered from an encrypted local folder,
make no request to the (real, loopback) model server and are marked as cached; off unless asked."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

import tether
from tests.apps import lifecycle
from tether import llm
from tether._runtime import Runtime
from tether.engine.codec import Keyring, build_codec, new_key
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.engine.records import StepRecord
from tether.llm import _report
from tether.llm._cache import cache_key, cached
from tether.llm._types import Message, ModelCall, ModelReply
from tether.testing import ChatServer, chat_reply, unique_queue

REPO = Path(__file__).resolve().parents[2]
KEY = new_key()


@pytest_asyncio.fixture
async def sealed_client(tether_server: DevServer) -> AsyncIterator[tether.Client]:
    """A client (and so its in-process workers) holding a payload key, as `tether dev` does."""
    conn = Connection(address=tether_server.address, task_queue=unique_queue("cache"),
                      codec=build_codec(Keyring([KEY])))
    yield tether.Client(await conn.connect(), conn)


def model_steps(detail: tether.RunDetail) -> list[StepRecord]:
    return [s for s in detail.steps if s.name == llm.STEP_NAME]


async def test_identical_calls_are_answered_from_the_cache_and_marked(
        sealed_client: tether.Client, chat_server: ChatServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, tether_server: DevServer) -> None:
    folder = tmp_path / "cache"
    monkeypatch.setenv("TETHER_MODEL_CACHE", str(folder))
    chat_server.script(chat_reply("Net 30 days, paid by wire"))
    question = lifecycle.Question(model=chat_server.model("terms"), prompt="Payment terms of invoice A-1?")
    async with tether.Worker(sealed_client):
        first = await sealed_client.start(lifecycle.ask_twice, question)
        assert await first.result(timeout=30) == ["Net 30 days, paid by wire"] * 2
        assert len(chat_server.requests) == 1  # the second, identical call made no request
        second = await sealed_client.start(lifecycle.ask_twice, question)
        assert await second.result(timeout=30) == ["Net 30 days, paid by wire"] * 2
        assert len(chat_server.requests) == 1  # nor did either call of the next run
        other = await sealed_client.start(lifecycle.ask_twice, question.model_copy(update={"prompt": "Due date?"}))
        chat_server.script(chat_reply("March 1"))
        assert await other.result(timeout=30) == ["March 1"] * 2
        assert len(chat_server.requests) == 2  # a different prompt is a different call
        detail = await first.describe()
    labels = [_report.step_label(s) for s in model_steps(detail)]
    assert "cached" not in labels[0] and labels[1].endswith(" · chat · cached")
    reply = _report.reply_of(model_steps(detail)[1])
    assert reply is not None and reply.cost == 0.0  # no request, nothing spent
    entries = list(folder.glob("*.bin"))
    assert len(entries) == 2 and all(b"Net 30" not in e.read_bytes() and b"March" not in e.read_bytes()
                                      for e in entries)  # sealed with the payload key
    assert folder.stat().st_mode & 0o777 == 0o700

    env = {**os.environ, "TETHER_KEYS": f"{KEY.id}:{base64.b64encode(KEY.secret).decode()}"}
    shown = subprocess.run([sys.executable, "-m", "tether", "show", first.id, "--address", tether_server.address],
                           cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("· cached") == 1  # `tether show` marks the cached call


async def test_the_cache_is_off_unless_asked(sealed_client: tether.Client, chat_server: ChatServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_MODEL_CACHE", raising=False)
    chat_server.script(chat_reply("one"), chat_reply("two"))
    question = lifecycle.Question(model=chat_server.model("terms"), prompt="Same question")
    async with tether.Worker(sealed_client):
        assert await sealed_client.run(lifecycle.ask_twice, question) == ["one", "two"]
    assert len(chat_server.requests) == 2


class _Sealing(Runtime):
    """A runtime that seals (for unit tests of the wrapper without a worker)."""

    def __init__(self, private: bool) -> None:
        self.private = private

    def seals_privately(self) -> bool:
        return self.private

    async def seal(self, value: ModelReply) -> bytes:  # type: ignore[override]
        return value.model_dump_json().encode()[::-1]

    async def unseal(self, data: bytes, kind: type[ModelReply]) -> ModelReply:  # type: ignore[override]
        return kind.model_validate_json(data[::-1])


def _call(text: str) -> ModelCall:
    return ModelCall(model="scripted:x", messages=[Message(role="user", content=text)])


async def _asked_twice(call: ModelCall) -> int:
    asked = []

    async def ask(c: ModelCall) -> ModelReply:
        asked.append(c)
        return ModelReply(model=c.model, text="ok")

    answer = cached(ask)
    await answer(call)
    await answer(call)
    return len(asked)


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> _Sealing:
    from tether import _runtime

    monkeypatch.setenv("TETHER_MODEL_CACHE", str(tmp_path / "cache"))
    rt = _Sealing(private=True)
    monkeypatch.setattr(_runtime, "current", lambda: rt)
    return rt


async def test_calls_carrying_a_sensitive_handle_are_never_cached(runtime: _Sealing) -> None:
    handle: tether.Sensitive[str] = tether.Sensitive(zone="vault", id="0" * 32, label="iban", preview="DE** **** 4321")
    assert await _asked_twice(_call("summarise plainly")) == 1
    assert await _asked_twice(_call(f"summarise {handle}")) == 2
    assert await _asked_twice(ModelCall(model="scripted:x", messages=[Message(role="user", content="x")],
                                        output_schema={"examples": [handle.model_dump(mode="json")]})) == 2


async def test_no_cache_without_a_payload_key(runtime: _Sealing, caplog: pytest.LogCaptureFixture) -> None:
    runtime.private = False
    assert await _asked_twice(_call("hello")) == 2
    assert "no payload key" in caplog.text


def test_the_key_is_what_is_asked_not_which_round_asks_it() -> None:
    base = _call("hi")
    assert cache_key(base) == cache_key(base.model_copy(update={"repair": 1, "fallback": 2, "reason": "x"}))
    assert cache_key(base) != cache_key(base.model_copy(update={"temperature": 0.5}))
    assert cache_key(base) != cache_key(base.model_copy(update={"output_schema": {"type": "object"}}))
    assert cache_key(base) != cache_key(base.model_copy(update={"model": "scripted:y"}))
