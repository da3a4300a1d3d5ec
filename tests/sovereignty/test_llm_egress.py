"""The egress guard on the model path: handles and revealed values never reach a cloud model."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tether
from tests.apps import sov_llm as app
from tests.sovereignty.conftest import Connect
from tether.testing import ChatServer, chat_reply


@pytest.fixture(autouse=True)
def vault_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TETHER_VAULT", str(tmp_path / "vault.db"))
    return tmp_path / "vault.db"


@pytest.fixture
def cloud() -> Iterator[ChatServer]:
    with ChatServer(default=chat_reply("no risk")) as server:
        yield server


async def _run(client: tether.Client, wf: tether.Workflow[..., Any], ask: dict[str, str]) -> tether.Run[Any]:
    async with tether.Worker(client, workflows=[wf]), tether.Worker(client, queues=["vault"], workflows=[]):
        run = await client.start(wf, ask)
        with contextlib.suppress(tether.RunFailed):
            await asyncio.wait_for(run.result(), 120)
    return run


async def test_handle_in_a_prompt_to_the_cloud_model_is_blocked(connect: Connect, queue: str,
                                                               cloud: ChatServer) -> None:
    client = await connect(None, queue=queue)
    run = await _run(client, app.sov_careless, {"customer_id": "c1", "model": cloud.model("gpt-cloud")})
    with pytest.raises(tether.RunFailed) as info:
        await run.result()
    assert "EgressBlocked" in f"{info.value.error_type} {info.value}"
    assert "'ssn' from zone 'vault'" in str(info.value) and "gpt-cloud" in str(info.value)
    assert cloud.requests == []  # nothing reached the model server
    detail = await run.describe()
    assert "EgressBlocked" in f"{detail.error_type} {detail.error}"


async def test_preview_may_go_to_the_cloud_model(connect: Connect, queue: str, cloud: ChatServer) -> None:
    client = await connect(None, queue=queue)
    run = await _run(client, app.sov_careful, {"customer_id": "c1", "model": cloud.model("gpt-cloud")})
    assert await run.result() == "no risk"
    (request,) = cloud.requests
    assert "***-**-6789" in str(request.body) and "123-45-6789" not in str(request.body)


async def test_revealed_value_in_the_vault_stops_at_a_cloud_model(connect: Connect, queue: str,
                                                                  cloud: ChatServer) -> None:
    client = await connect(None, queue=queue)
    run = await _run(client, app.sov_vault_asks_model, {"customer_id": "c1", "model": cloud.model("gpt-cloud")})
    with pytest.raises(tether.RunFailed, match="EgressBlocked"):
        await run.result()
    assert cloud.requests == []


async def test_revealed_value_in_the_vault_may_go_to_the_local_model(connect: Connect, queue: str) -> None:
    client = await connect(None, queue=queue)
    run = await _run(client, app.sov_vault_asks_model, {"customer_id": "c1", "model": "local:smollm2"})
    assert isinstance(await run.result(), str)
