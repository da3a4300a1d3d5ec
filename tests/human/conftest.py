"""Fixtures for the human-task tests: a real HTTP API server on loopback, task polling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
import uvicorn

import tether
from tether.engine.devserver import free_port
from tether.studio.api import create_app


@dataclass
class Api:
    """A running HTTP API: its base URL and an httpx client for it."""

    url: str
    http: httpx.AsyncClient


async def _serve(app: object) -> AsyncIterator[Api]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",  # type: ignore[arg-type]
                                           lifespan="off"))
    server.capture_signals = contextlib.nullcontext  # type: ignore[assignment]  # pytest owns signals
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the API server did not start"
        await asyncio.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=90) as http:
        yield Api(url, http)
    server.should_exit = True
    await task


@pytest_asyncio.fixture
async def api(tether_client: tether.Client) -> AsyncIterator[Api]:
    """The HTTP API (no token), served by uvicorn on a free loopback port."""
    async for a in _serve(create_app(tether_client)):
        yield a


@pytest_asyncio.fixture
async def api_with_token(tether_client: tether.Client) -> AsyncIterator[Api]:
    """The HTTP API with the token requirement on (token "s3cret")."""
    async for a in _serve(create_app(tether_client, token="s3cret")):
        yield a


async def wait_for_task(client: tether.Client, task_id: str, *, timeout: float = 30) -> tether.HumanTask:
    """Poll the inbox until `task_id` is listed as open (visibility is eventually consistent)."""
    run_id = task_id.rpartition(".")[0]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for t in await client.tasks.list(run_id=run_id):
            if t.id == task_id:
                return t
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"task {task_id} never opened")
        await asyncio.sleep(0.1)


async def cancel(run: tether.Run[Any]) -> None:
    """Cancel a run and wait until it has ended (so no open task outlives its test)."""
    await run.cancel()
    try:
        await run.result()
    except tether.RunCancelled:
        return
    raise AssertionError(f"run {run.id} was not cancelled")
