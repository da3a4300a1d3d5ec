"""Fixtures for Studio's tests: a real Studio on loopback over the session's dev server, a span
store of its own, and a real headless Chromium (Debian's package) driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

import tether
from tether import observe, settings
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer, free_port
from tether.studio import create_studio, start_background
from tether.studio.app import Running
from tether.testing import unique_queue

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "studio"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "studio-test-token-7f3a"


@dataclass
class StudioServer:
    """A Studio served on 127.0.0.1 for a test."""

    url: str
    client: tether.Client
    store: Path
    running: Running

    def http(self, **kw: Any) -> httpx.AsyncClient:
        """An HTTP client for it (no cookies, no redirects followed)."""
        return httpx.AsyncClient(base_url=self.url, timeout=60, follow_redirects=False, **kw)


@pytest.fixture
def span_store(tmp_path: Path) -> Iterator[Path]:
    """Spans finished in this process go to a store of this test's own (as under `tether dev`)."""
    from tether.observe import _setup

    before = _setup._state.store
    with settings.override():  # use_store sets the trace_store setting: undone after the test
        path = observe.use_store(tmp_path / "traces.db")
        try:
            yield path
        finally:
            observe.flush()
            processor = _setup._state.store_processor
            if processor is not None:
                _setup._state.sinks.remove(processor)
                processor.shutdown()
            _setup._state.store, _setup._state.store_processor = None, None
    if before is not None:
        observe.use_store(before)


async def serve_studio(client: tether.Client, store: Path, **kw: Any) -> Running:
    """Studio with the test app's workflows, on a free loopback port."""
    from tests.apps import studio_flows as flows

    workflows = {w.name: w for w in (flows.studio_claim, flows.studio_many_steps, flows.studio_quick)}
    app = create_studio(client, workflows=workflows, store=store, temporal_ui="http://127.0.0.1:8233", **kw)
    return await start_background(app, port=free_port(), token=kw.get("token"))


@pytest_asyncio.fixture
async def studio(tether_server: DevServer, span_store: Path) -> AsyncIterator[StudioServer]:
    """Studio (no login: loopback) with a traced client on a queue of its own."""
    conn = Connection(address=tether_server.address, task_queue=unique_queue("studio"), telemetry=True)
    client = tether.Client(await conn.connect(), conn)
    running = await serve_studio(client, span_store)
    try:
        yield StudioServer(running.url, client, span_store, running)
    finally:
        await running.stop()


@pytest_asyncio.fixture
async def locked_studio(tether_server: DevServer, tmp_path: Path) -> AsyncIterator[StudioServer]:
    """Studio configured as for a non-loopback address: token login required, any Host accepted."""
    conn = Connection(address=tether_server.address, task_queue=unique_queue("studio"))
    client = tether.Client(await conn.connect(), conn)
    running = await serve_studio(client, tmp_path / "traces.db", token=TOKEN, loopback_only=False)
    try:
        yield StudioServer(running.url, client, tmp_path / "traces.db", running)
    finally:
        await running.stop()


@pytest_asyncio.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    """A real headless Chromium (Debian's `chromium`), never a downloaded one."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: Studio's browser tests need Debian's chromium; install it with "
                    "scripts/install-browser.sh (as root)", pytrace=False)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture
async def page(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser page (own cookies), 1360 px wide, failing fast on a missing element."""
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(20_000)
    pg = await context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield pg
    finally:
        await context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


async def screenshot(pg: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/studio/ (gitignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await pg.screenshot(path=str(path), full_page=True)
    return path
