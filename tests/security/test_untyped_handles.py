"""Issue 12, item 3: handles that lost their type (plain dicts, their repr, JSON or escaped JSON,
the repr of a handle inside a list) are recognised and blocked before a cloud model."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import tether
from tests.apps import sec_leaks as app
from tests.security._leak_support import connect, vault_file
from tether._sensitive import Sensitive, check_egress
from tether.engine.devserver import DevServer
from tether.errors import EgressBlocked
from tether.testing import ChatServer, chat_reply, unique_queue

__all__ = ["vault_file"]  # fixtures

HANDLE = Sensitive[str](zone="vault", id="ab" * 16, label="ssn")
PLAIN = HANDLE.model_dump()


@pytest.mark.parametrize("text", [
    f"check {PLAIN}",                                   # str() of the plain dict
    f"check {[HANDLE]}",                                # repr of a handle inside a list
    f"check {({'rows': [{'who': PLAIN}]})}",            # nested
    f"check {json.dumps(PLAIN)}",                       # its JSON
    f"check {json.dumps(json.dumps({'x': PLAIN}))}",    # JSON escaped twice
], ids=["dict-str", "list-repr", "nested", "json", "escaped-json"])
def test_handle_written_as_text_is_blocked(text: str) -> None:
    with pytest.raises(EgressBlocked, match=r"'ssn' from zone 'vault' may not go to openai:gpt-4\.1-mini"):
        check_egress({"messages": [{"role": "user", "content": text}]}, destination="openai:gpt-4.1-mini")


def test_handle_text_may_stay_in_its_zone_and_a_schema_passes() -> None:
    check_egress(f"check {PLAIN}", destination="local:smollm2", zone="vault")
    schema = json.dumps(Sensitive[str].model_json_schema())
    assert "tether.sensitive" in schema
    check_egress({"schema": schema}, destination="openai:gpt-4.1-mini")


@pytest.fixture
def cloud() -> Iterator[ChatServer]:
    with ChatServer(default=chat_reply("fine")) as server:
        yield server


@pytest.mark.parametrize("way", ["dict", "list", "json"])
async def test_untyped_step_result_in_a_prompt_never_reaches_the_model(
        way: str, tether_server: DevServer, tmp_path: Path, vault_file: Path, cloud: ChatServer) -> None:
    client = await connect(tether_server.address, unique_queue("sec"), None, tmp_path / "payloads")
    async with tether.Worker(client, workflows=[app.sec_untyped_prompt]), \
            tether.Worker(client, queues=["vault"], workflows=[]):
        run = await client.start(app.sec_untyped_prompt, {"way": way, "model": cloud.model("gpt-cloud")})
        with contextlib.suppress(tether.RunFailed):
            await asyncio.wait_for(run.result(), 60)
    with pytest.raises(tether.RunFailed, match="'ssn' from zone 'vault' may not go to"):
        await run.result()
    assert cloud.requests == []
