"""How `tether` reads its own options wherever they stand (no process started)."""

from __future__ import annotations

import pytest

from tether.cli._common import hoist_global_options


@pytest.mark.parametrize(("given", "parsed"), [
    (["runs", "show", "r1", "--address", "h:7233"], ["--address", "h:7233", "runs", "show", "r1"]),
    (["runs", "list", "--namespace=payments", "--json"], ["--namespace=payments", "runs", "list", "--json"]),
    (["worker", "app.py", "--allow-plaintext", "--queues", "vault"],
     ["--allow-plaintext", "worker", "app.py", "--queues", "vault"]),
    (["run", "app.py:flow", "--debug", "--task-queue", "q"], ["--debug", "--task-queue", "q", "run", "app.py:flow"]),
    (["run", "app.py:flow", "--", "--address"], ["run", "app.py:flow", "--", "--address"]),
    (["run", "app.py:flow", "--input", '{"a": "--address"}'], ["run", "app.py:flow", "--input", '{"a": "--address"}']),
])
def test_connection_options_and_debug_may_follow_the_command(given: list[str], parsed: list[str]) -> None:
    assert hoist_global_options(given) == parsed
