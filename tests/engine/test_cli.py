"""The `tether` command through its real entry point, against the session's dev server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tether.engine.devserver import DevServer
from tether.testing import unique_queue

REPO = Path(__file__).resolve().parents[2]


def tether_cmd(*args: str, cwd: Path = REPO, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tether", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def target(tether_server: DevServer) -> list[str]:
    return ["--address", tether_server.address, "--task-queue", unique_queue("cli")]


def test_run_prints_result_and_steps(target: list[str]) -> None:
    r = tether_cmd("run", "tests.apps.basics:order_total", "--input", '{"id": "a1", "amount": 10}', *target)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"id": "a1", "total": 11.9, "tags": []}
    assert "✓ price" in r.stderr


def test_bad_input_names_field_and_starts_no_run(target: list[str]) -> None:
    r = tether_cmd("run", "tests.apps.basics:order_total", "--input", '{"id": "a1", "amount": "lots"}', *target)
    assert r.returncode == 2
    assert "field 'amount'" in r.stderr and "Traceback" not in r.stderr
    listed = tether_cmd("runs", "--json", "--limit", "200", *target[:2])
    queue = target[3]
    assert all(run["task_queue"] != queue for run in json.loads(listed.stdout))


def test_input_that_is_not_json(target: list[str], tmp_path: Path) -> None:
    r = tether_cmd("run", "tests.apps.basics:order_total", "--input", "{id: 1}", *target)
    assert r.returncode == 2 and "--input is not valid JSON" in r.stderr
    r = tether_cmd("run", "tests.apps.basics:order_total", "--input", f"@{tmp_path}/nope.json", *target)
    assert r.returncode == 2 and "cannot read input file" in r.stderr


def test_unknown_workflow_lists_available(target: list[str]) -> None:
    r = tether_cmd("run", "tests.apps.basics:nope", *target)
    assert r.returncode == 2
    assert "no workflow named 'nope'" in r.stderr and "order_total" in r.stderr


def test_unknown_app(target: list[str]) -> None:
    r = tether_cmd("run", "no_such_module:flow", *target)
    assert r.returncode == 2 and "app 'no_such_module' not found" in r.stderr


def test_unreachable_server_names_address() -> None:
    r = tether_cmd("runs", "--address", "127.0.0.1:1", timeout=60)
    assert r.returncode == 1
    assert "cannot reach the Temporal server at 127.0.0.1:1" in r.stderr and "Traceback" not in r.stderr


def test_show_lists_attempts_of_a_retried_step(target: list[str], tmp_path: Path) -> None:
    marker = tmp_path / "m"
    r = tether_cmd("run", "tests.apps.basics:retrying", "--input", json.dumps(str(marker)), "--id",
                   f"retry-{tmp_path.name}", *target)
    assert r.returncode == 0, r.stderr
    assert "(3 attempts)" in r.stderr
    show = tether_cmd("show", f"retry-{tmp_path.name}", *target)
    assert show.returncode == 0, show.stderr
    row = next(line for line in show.stdout.splitlines() if " flaky " in line)
    assert re.search(r"flaky\s+completed\s+3\s", row), row
    assert "transient failure 2" in row


def test_non_retryable_fails_fast_with_original_message(target: list[str]) -> None:
    r = tether_cmd("run", "tests.apps.basics:strict_flow", "--input", '"x"', *target)
    assert r.returncode == 1
    assert "ValueError: value 'x' is not acceptable" in r.stderr and "Traceback" not in r.stderr


def test_determinism_violation_is_explained(target: list[str], tmp_path: Path) -> None:
    (tmp_path / "f").write_text("hello")
    r = tether_cmd("run", "tests.apps.basics:reads_file", "--input", json.dumps(str(tmp_path / "f")), *target)
    assert r.returncode == 2
    assert "must be deterministic" in r.stderr and "tether.step" in r.stderr
    assert "Traceback" not in r.stderr


def test_no_wait_then_show_and_cancel(target: list[str]) -> None:
    r = tether_cmd("run", "tests.apps.basics:sleepy", "--input", "600", "--no-wait", *target)
    assert r.returncode == 0, r.stderr
    run_id = r.stdout.strip()
    assert run_id.startswith("sleepy-")
    assert "no worker is serving" in r.stderr
    show = tether_cmd("show", run_id, "--json", *target)
    assert json.loads(show.stdout)["status"] == "running"
    assert tether_cmd("cancel", run_id, *target).returncode == 0
    missing = tether_cmd("show", "no-such-run", *target)
    assert missing.returncode == 2 and "no run with id 'no-such-run'" in missing.stderr


def test_debug_shows_traceback(target: list[str]) -> None:
    r = tether_cmd("--debug", "run", "tests.apps.basics:nope", *target)
    assert "Traceback" in r.stderr


def test_help_lists_debug_and_the_commands_grouped_in_working_order() -> None:
    r = tether_cmd("--help")
    assert r.returncode == 0
    text = r.stdout
    assert "--debug" in text and "Show tracebacks" in text
    order = [text.index(f"│ {name} ") for name in ("dev", "run", "worker", "runs", "tasks", "stats", "studio",
                                                     "keys", "mcp")]
    assert order == sorted(order), text
    assert text.index("Runs") < text.index("People") < text.index("Observe") < text.index("Setup")
    assert "Shortcuts: tether show | cancel | terminate | trace RUN_ID" in text  # hidden from the panels
    serve = tether_cmd("serve", "--help")
    assert "7301" in serve.stdout, "tether serve and Studio do not collide on one port"


def test_debug_works_before_or_after_the_command() -> None:
    for args in (["--debug", "run", "tests/apps/basics.py:nope"], ["run", "tests/apps/basics.py:nope", "--debug"]):
        r = tether_cmd(*args)
        assert r.returncode == 2 and "Traceback" in r.stderr, (args, r.stderr)
    quiet = tether_cmd("run", "tests/apps/basics.py:nope")
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr


CONNECTION_OPTIONS = ("--address", "--namespace", "--task-queue", "--tls-cert", "--tls-key", "--tls-ca", "--api-key",
                      "--allow-plaintext")


def test_connection_options_are_shown_once() -> None:
    top = tether_cmd("--help").stdout
    assert "Connection (before or after the command)" in top
    for option in CONNECTION_OPTIONS:
        assert top.count(option) == 1, (option, top)
    for args in (["runs", "--help"], ["runs", "list", "--help"], ["runs", "show", "--help"], ["show", "--help"],
                 ["tasks", "answer", "--help"], ["worker", "--help"]):
        text = tether_cmd(*args).stdout
        assert all(text.count(option) == 1 for option in CONNECTION_OPTIONS[:-1]), (args, text)  # in the epilog
        assert "connection options of `tether --help`" in text


def test_runs_group_and_its_shortcuts(target: list[str]) -> None:
    address, queue = target[1], target[3]
    started = [tether_cmd("run", "tests.apps.basics:sleepy", "--input", "600", "--no-wait", *target).stdout.strip()
               for _ in range(2)]
    for listing in (["runs", "list"], ["runs"], ["--address", address, "runs", "list"]):
        r = tether_cmd(*listing, "--json", "--limit", "200", *target)
        assert r.returncode == 0, (listing, r.stderr)
        ids = {run["id"] for run in json.loads(r.stdout) if run["task_queue"] == queue}
        assert ids == set(started), listing
    for show in (["runs", "show"], ["show"]):
        r = tether_cmd(*show, started[0], "--json", *target)
        assert r.returncode == 0 and json.loads(r.stdout)["status"] == "running", (show, r.stderr)
    assert tether_cmd("runs", "cancel", started[0], *target).returncode == 0
    assert tether_cmd("terminate", started[1], "--reason", "test over", *target).returncode == 0
    assert tether_cmd("runs", "terminate", "no-such-run", *target).returncode != 0
    statuses = {run_id: json.loads(tether_cmd("runs", "show", run_id, "--json", *target).stdout)["status"]
                for run_id in started}
    assert statuses[started[1]] == "terminated"
    assert statuses[started[0]] in ("cancelled", "running")  # no worker serves the queue to finish cancelling


def test_a_bad_option_value_is_one_line() -> None:
    for args in (["runs", "list", "--limit", "lots"], ["runs", "--bogus"], ["show"], ["runs", "list", "--address"]):
        r = tether_cmd(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, (args, r.stderr)
        assert "Traceback" not in r.stderr and "╭" not in r.stderr
    limit = tether_cmd("runs", "list", "--limit", "lots")
    assert "'--limit'" in limit.stderr and "tether runs list --help" in limit.stderr


def test_a_bad_tether_variable_is_one_line_naming_it() -> None:
    env = {**os.environ, "TETHER_HEARTBEAT_TIMEOUT": "soon"}
    r = subprocess.run([sys.executable, "-m", "tether", "runs"], cwd=REPO, capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "TETHER_HEARTBEAT_TIMEOUT" in r.stderr and "'soon'" in r.stderr and "Traceback" not in r.stderr
