"""Item 9: `tether run --id` uses an id once. Repeating the start of a finished run (a retried
payment) is refused with a clear line unless `--allow-id-reuse`; a running run's id, or an empty
one, gets a clear line too (not `WorkflowAlreadyStartedError` or `RPCError: WorkflowId is not set`)."""

from __future__ import annotations

import pytest

import tether
from tests.apps import basics, human_flows
from tests.security._ways_support import cli, end
from tether.testing import unique_queue


async def test_a_finished_runs_id_is_not_reused_by_default(tether_client: tether.Client) -> None:
    conn = tether_client.connection
    where = ("--address", conn.address, "--task-queue", conn.task_queue)
    pay = f"pay-invoice-{unique_queue('id')}"
    async with tether.Worker(tether_client):
        code, out, err = await cli("run", "tests/apps/basics.py:counter", "--input", "3", "--id", pay, *where)
        assert code == 0 and out.strip() == "3", err
        code, out, err = await cli("run", "tests/apps/basics.py:counter", "--input", "3", "--id", pay, *where)
        assert code == 2 and out == "", (code, out, err)
        line = err.strip()
        assert len(line.splitlines()) == 1 and "Traceback" not in err and "WorkflowAlreadyStarted" not in err
        assert f"a run with id {pay} already exists (completed)" in line and "--allow-id-reuse" in line
        runs = [r for r in await tether_client.list_runs(id_prefix=pay)]
        assert len(runs) == 1  # nothing was started the second time
        code, out, err = await cli("run", "tests/apps/basics.py:counter", "--input", "3", "--id", pay,
                                   "--allow-id-reuse", *where)
        assert code == 0 and out.strip() == "3", err

        # the library refuses the same way
        with pytest.raises(tether.UsageError, match="already exists"):
            await tether_client.start(basics.counter, 3, id=pay)

        waiting = await tether_client.start(human_flows.human_approval, "Pay?", id=f"{pay}-open")
        try:
            code, _, err = await cli("run", "tests/apps/human_flows.py:human_approval", "--input", '"Pay?"',
                                     "--id", waiting.id, *where)
            assert code == 2 and f"run {waiting.id} is already running" in err and "Traceback" not in err
        finally:
            await end(tether_client, waiting)

    code, _, err = await cli("run", "tests/apps/basics.py:counter", "--input", "3", "--id", "", *where)
    assert code == 2 and "--id must not be empty" in err and "RPCError" not in err
