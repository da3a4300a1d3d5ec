"""Schedules on the real dev server: runs start on an interval, pause stops them, bad input creates nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import tether
from tests.apps import lifecycle
from tether.engine.devserver import DevServer
from tether.engine.schedules import ScheduleNotFound
from tether.errors import InvalidInput, UsageError
from tether.testing import eventually, unique_queue

REPO = Path(__file__).resolve().parents[2]


def sid(prefix: str = "sched") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def started_by(client: tether.Client, schedule_id: str) -> list[str]:
    return [r.id for r in await client.list_runs(id_prefix=f"{schedule_id}-", limit=100)]


async def test_a_schedule_every_2s_starts_runs_and_pause_stops_them(tether_client: tether.Client) -> None:
    ticking, control = sid("ticking"), sid("control")
    async with tether.Worker(tether_client):
        info = await tether_client.schedules.create(lifecycle.invoice_batch, {"day": "mon"}, every="2s",
                                                    id=ticking)
        assert (info.workflow, info.when, info.paused) == ("invoice_batch", "every 2s", False)

        async def two_runs_completed() -> None:
            runs = await tether_client.list_runs(id_prefix=f"{ticking}-", status="completed")
            assert len(runs) >= 2

        await eventually(two_runs_completed, timeout=30)
        await tether_client.schedules.pause(ticking, note="ledger migration")
        paused = await tether_client.schedules.describe(ticking)
        assert paused.paused and paused.note == "ledger migration"
        assert paused.last_run is not None and paused.last_run.run_id.startswith(f"{ticking}-")
        before = await started_by(tether_client, ticking)
        # a control schedule on the same clock: while it starts three runs, the paused one starts none
        await tether_client.schedules.create(lifecycle.invoice_batch, {"day": "tue"}, every="2s", id=control)

        async def control_ran_three_times() -> None:
            assert len(await started_by(tether_client, control)) >= 3

        await eventually(control_ran_three_times, timeout=30)
        assert await started_by(tether_client, ticking) == before
        for s in (ticking, control):
            await tether_client.schedules.delete(s)
    with pytest.raises(ScheduleNotFound, match=ticking):
        await tether_client.schedules.describe(ticking)


async def test_bad_cron_or_input_creates_nothing(tether_client: tether.Client) -> None:
    name = sid("bad")
    with pytest.raises(UsageError, match=r"invalid cron expression '61 \* \* \* \*'.*Minute"):
        await tether_client.schedules.create(lifecycle.invoice_batch, {"day": "x"}, cron="61 * * * *", id=name)
    with pytest.raises(UsageError, match="five fields"):
        await tether_client.schedules.create(lifecycle.invoice_batch, {"day": "x"}, cron="every day", id=name)
    with pytest.raises(InvalidInput, match="field 'day'"):
        await tether_client.schedules.create(lifecycle.invoice_batch, {"when": "x"}, every="1h", id=name)
    with pytest.raises(UsageError, match="exactly one of --cron"):
        await tether_client.schedules.create(lifecycle.invoice_batch, {"day": "x"}, id=name)
    with pytest.raises(ScheduleNotFound):
        await tether_client.schedules.describe(name)


async def test_trigger_starts_a_run_of_a_paused_schedule(tether_client: tether.Client) -> None:
    name = sid("nightly")
    info = await tether_client.schedules.create(lifecycle.invoice_batch, {"day": "wed"}, cron="0 2 * * *",
                                                id=name, paused=True, overlap="buffer", catchup="1h")
    assert (info.when, info.overlap, info.paused) == ("cron 0 2 * * *", "buffer", True)
    assert info.next_runs and all(t.hour == 2 and t.minute == 0 for t in info.next_runs)
    async with tether.Worker(tether_client):
        await tether_client.schedules.trigger(name)

        async def one_run() -> None:
            runs = await started_by(tether_client, name)
            assert len(runs) == 1
            assert await tether_client.get(runs[0]).result(timeout=20) == 3

        await eventually(one_run, timeout=30)
    await tether_client.schedules.delete(name)


def tether_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tether", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_cli_create_list_describe_pause_delete(tether_server: DevServer) -> None:
    target = ["--address", tether_server.address, "--task-queue", unique_queue("cli")]
    name = sid("cli")
    bad = tether_cmd("schedules", "create", "tests.apps.lifecycle:invoice_batch", "--cron", "0 9 * * MON-FRX",
                     "--input", '{"day": "mon"}', "--id", name, *target)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "invalid cron expression" in bad.stderr and "Traceback" not in bad.stderr
    made = tether_cmd("schedules", "create", "tests.apps.lifecycle:invoice_batch", "--cron", "0 9 * * MON-FRI",
                      "--input", '{"day": "mon"}', "--id", name, *target)
    assert made.returncode == 0, made.stderr
    assert f"created schedule {name}: invoice_batch cron 0 9 * * MON-FRI; next run" in made.stdout
    listed = tether_cmd("schedules", "list", "--json", *target)
    (mine,) = [s for s in json.loads(listed.stdout) if s["id"] == name]
    assert mine["when"] == "cron 0 9 * * MON-FRI" and mine["next_runs"]
    assert tether_cmd("schedules", "pause", name, *target).returncode == 0
    shown = tether_cmd("schedules", "describe", name, *target)
    assert "paused" in shown.stdout and "overlap skip" in shown.stdout
    assert tether_cmd("schedules", "delete", name, *target).returncode == 0
    gone = tether_cmd("schedules", "describe", name, *target)
    assert gone.returncode == 1 and f"no schedule '{name}'" in gone.stderr
