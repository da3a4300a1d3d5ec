"""Sensitive values through real runs: handles travel, values stay in their zone's vault."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import tether
from tests.apps import sov_vault as app
from tests.sovereignty.conftest import Connect
from tether.engine.codec import Key

SSN = "123-45-6789"
NOTES = app.PEOPLE["c1"][2]


@pytest.fixture(autouse=True)
def vault_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "vault.db"
    monkeypatch.setenv("TETHER_VAULT", str(path))
    return path


def _vault_values(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT value FROM sensitive")}


async def _run(client: tether.Client, wf: tether.Workflow[..., Any], arg: str,
               zones: tuple[str, ...] = ("vault",)) -> tether.Run[Any]:
    async with tether.Worker(client, workflows=[wf], steps=[]), \
            tether.Worker(client, queues=list(zones), workflows=[]):
        run = await client.start(wf, arg)
        with contextlib.suppress(tether.RunFailed):
            await asyncio.wait_for(run.result(), 60)
    return run


async def _raw_history(client: tether.Client, run_id: str) -> bytes:
    events = [e async for e in client.temporal.get_workflow_handle(run_id).fetch_history_events()]
    return b"".join(e.SerializeToString() for e in events)


async def test_handles_travel_and_resolve_in_their_zone(connect: Connect, queue: str, k1: Key,
                                                        vault_file: Path) -> None:
    plain = await connect(None, queue=queue)  # no encryption: only handles may reach the server
    run = await _run(plain, app.sov_report, "c1")
    report = await run.result()
    assert report.last4 == "6789" and report.notes_words == len(NOTES.split())
    assert report.customer.ssn.zone == "vault" and report.customer.ssn.label == "ssn"
    assert report.customer.ssn.preview == "***-**-6789" and report.customer.notes.preview is None
    assert report.shown.startswith("<<sensitive:ssn@vault/") and SSN not in report.shown
    raw = await _raw_history(plain, run.id)
    assert SSN.encode() not in raw and b"chronic migraine" not in raw
    assert {f'"{SSN}"', f'"{NOTES}"'} <= _vault_values(vault_file)


async def test_sensitive_return_annotation_seals_the_result(connect: Connect, queue: str) -> None:
    plain = await connect(None, queue=queue)
    run = await _run(plain, app.sov_sealed, "c2")
    assert await run.result() == "4321 - sov_ssn_of"
    assert b"987-65-4321" not in await _raw_history(plain, run.id)


async def test_step_returning_a_revealed_value_is_blocked(connect: Connect, queue: str) -> None:
    plain = await connect(None, queue=queue)
    run = await _run(plain, app.sov_leaky, "c1")
    with pytest.raises(tether.RunFailed) as info:
        await run.result()
    assert "EgressBlocked" in str(info.value) and "'ssn' from zone 'vault'" in str(info.value)
    assert SSN.encode() not in await _raw_history(plain, run.id)
    leak = (await run.describe()).steps[-1]
    assert leak.name == "sov_leak" and leak.attempts == 1  # not retried


async def test_handle_does_not_resolve_in_another_zone(connect: Connect, queue: str) -> None:
    plain = await connect(None, queue=queue)
    run = await _run(plain, app.sov_wrong_zone, "c1", zones=("vault", "other"))
    with pytest.raises(tether.RunFailed) as info:
        await run.result()
    assert "EgressBlocked" in str(info.value)
    assert "zone 'vault' may not go to step 'sov_other_zone' in zone 'other'" in str(info.value)


async def test_workflow_code_cannot_reveal(connect: Connect, queue: str) -> None:
    plain = await connect(None, queue=queue)
    run = await _run(plain, app.sov_reveal_in_workflow, "c1")
    with pytest.raises(tether.RunFailed, match="workflow code cannot reveal sensitive value 'ssn'"):
        await run.result()


async def test_handle_in_a_prompt_is_blocked_in_workflow_code(connect: Connect, queue: str) -> None:
    plain = await connect(None, queue=queue)
    run = await _run(plain, app.sov_prompt_with_handle, "c1")
    with pytest.raises(tether.RunFailed) as info:
        await run.result()
    assert info.value.error_type == "EgressBlocked"
    assert "'ssn' from zone 'vault' may not go to openai:gpt-4.1-mini" in str(info.value)
    detail = await run.describe()
    assert detail.error_type == "EgressBlocked"


async def test_error_messages_do_not_carry_revealed_values(connect: Connect, queue: str) -> None:
    plain = await connect(None, queue=queue)
    run = await _run(plain, app.sov_complaining, "c1")
    with pytest.raises(tether.RunFailed) as info:
        await run.result()
    assert "ValueError: ssn <ssn withheld> failed the checksum" in str(info.value)
    assert (await run.describe()).steps[-1].attempts == 2  # still retried like a ValueError
    assert SSN.encode() not in await _raw_history(plain, run.id)
