"""Issue 12, item 7: claim checks name content hashes only, are read off the event loop, and a
planted FIFO (or symlink) is refused instead of freezing the worker."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from tether.engine.codec import CLAIM_CHECK, ClaimCheckCodec, FileStore
from tether.errors import DecryptionFailed


def _check(name: str) -> Payload:
    return Payload(metadata={"encoding": CLAIM_CHECK}, data=name.encode())


@pytest.mark.parametrize("name", ["../../secret.txt", "/etc/hostname", "a" * 63, "A" * 64, "x/../" + "a" * 59])
async def test_names_that_are_not_content_hashes_are_refused(name: str, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("top secret")
    codec = ClaimCheckCodec(FileStore(tmp_path / "a" / "b"))
    with pytest.raises(DecryptionFailed, match="not a payload content hash"):
        await codec.decode([_check(name)])


async def test_a_planted_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    store = tmp_path / "payloads"
    store.mkdir()
    name = hashlib.sha256(b"planted").hexdigest()
    os.mkfifo(store / name)
    codec = ClaimCheckCodec(FileStore(store))
    # a safety net for code without the fix, whose read blocks the whole event loop on the FIFO:
    # a writer comes and goes after a while, so the test fails instead of hanging
    rescue = threading.Timer(20, lambda: os.close(os.open(store / name, os.O_WRONLY)))
    rescue.daemon = True
    rescue.start()
    try:
        with pytest.raises(DecryptionFailed, match="not a regular file"):
            await asyncio.wait_for(codec.decode([_check(name)]), 30)
    finally:
        rescue.cancel()


async def test_a_planted_symlink_and_altered_content_are_refused(tmp_path: Path) -> None:
    store = tmp_path / "payloads"
    store.mkdir()
    (tmp_path / "secret.txt").write_text("top secret")
    linked = hashlib.sha256(b"a").hexdigest()
    os.symlink(tmp_path / "secret.txt", store / linked)
    altered = hashlib.sha256(b"b").hexdigest()
    (store / altered).write_bytes(Payload(data=b"not b").SerializeToString())
    codec = ClaimCheckCodec(FileStore(store))
    with pytest.raises(DecryptionFailed, match="cannot read large payload"):
        await codec.decode([_check(linked)])
    with pytest.raises(DecryptionFailed, match="does not match its content hash"):
        await codec.decode([_check(altered)])


class _SlowStore:
    """A store whose reads wait until the test says so."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.go = threading.Event()
        self.reading = threading.Event()

    def put(self, name: str, data: bytes) -> None:
        raise AssertionError("not used")

    def get(self, name: str) -> bytes:
        self.reading.set()
        self.go.wait(30)
        return self.data


async def test_reads_happen_off_the_event_loop() -> None:
    data = Payload(data=b"big document").SerializeToString()
    store = _SlowStore(data)
    codec = ClaimCheckCodec(store)
    task = asyncio.ensure_future(codec.decode([_check(hashlib.sha256(data).hexdigest())]))
    while not store.reading.is_set():  # the loop keeps running while the store is read
        await asyncio.sleep(0.01)
    assert not task.done()
    store.go.set()
    (payload,) = await asyncio.wait_for(task, 30)
    assert payload.data == b"big document"
