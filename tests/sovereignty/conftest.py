"""Fixtures for the sovereignty tests: keyed clients on the session's dev server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

import tether
from tether.engine.codec import FileStore, Key, Keyring, build_codec, new_key
from tether.engine.devserver import DevServer
from tether.testing import unique_queue

Connect = Callable[..., Awaitable[tether.Client]]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A claim-check store folder of the test's own."""
    return tmp_path / "payloads"


@pytest.fixture
def connect(tether_server: DevServer, store: Path) -> Connect:
    """`await connect(keys, queue=...)`: a client whose payloads are encrypted with `keys`."""

    async def _connect(keys: list[Key] | None, *, queue: str, threshold: int | None = None) -> tether.Client:
        codec = build_codec(Keyring(keys) if keys else None, store=FileStore(store),
                            threshold=threshold)
        conn = tether.Connection(address=tether_server.address, task_queue=queue, codec=codec)
        return tether.Client(await conn.connect(), conn)

    return _connect


@pytest.fixture
def queue() -> str:
    """A task queue of the test's own."""
    return unique_queue("sov")


@pytest.fixture
def k1() -> Key:
    return new_key()


@pytest.fixture
def k2() -> Key:
    return new_key()
