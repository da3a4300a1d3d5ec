"""`tether trace` and `tether stats` on real runs, through the real entry point: runs served by
`tether dev` are kept in `.tether/traces.db` and read back with no backend."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.observe.conftest import REPO, tether_cmd
from tether.engine.devserver import free_port


def _start_dev(state: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "tether", "dev", "tests/apps/obs_flows.py", "--port", str(port),
                             "--ui-port", "0", "--state-dir", str(state)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline, lines = time.monotonic() + 60, []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "ready" in line:
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("tether dev did not become ready:\n" + "".join(lines))


def _until_stored(state: Path, run_id: str) -> subprocess.CompletedProcess[str]:
    deadline = time.monotonic() + 20
    while True:  # the dev worker exports its spans every 200 ms
        r = tether_cmd("trace", run_id, "--state-dir", str(state))
        if r.returncode == 0 and "run obs_explained" in r.stdout:
            return r
        assert time.monotonic() < deadline, r.stdout + r.stderr
        time.sleep(0.2)


@pytest.fixture(scope="module")
def dev_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A `tether dev` project with two finished runs of obs_explained."""
    state = tmp_path_factory.mktemp("obs-dev") / "state"
    dev = _start_dev(state, free_port())
    try:
        ids = []
        for i in range(2):
            r = tether_cmd("run", "tests.apps.obs_flows:obs_explained", "--input", '"ACME invoice, 250 EUR"',
                           "--id", f"obs-cli-{i}", "--state-dir", str(state))
            assert r.returncode == 0, r.stderr
            ids.append(f"obs-cli-{i}")
        _until_stored(state, ids[-1])
        shown = tether_cmd("show", ids[0], "--state-dir", str(state))
        assert "decision: high_total = True (total=250.0, limit=100)" in shown.stdout, shown.stdout
    finally:
        dev.send_signal(signal.SIGINT)
        dev.wait(30)
    return state, ids


def test_trace_prints_the_runs_tree(dev_runs: tuple[Path, list[str]]) -> None:
    state, (run_id, _) = dev_runs
    r = tether_cmd("trace", run_id, "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "run obs_explained completed" in text
    assert "step obs_flaky 3 attempts" in text and "attempt 2" in text
    assert "RuntimeError: flaky: attempt 1 failed" in text
    assert "step llm scripted:obs-repair · structured Fields · repair 1" in text
    assert re.search(r"model scripted:obs-repair · \d+ in / \d+ out tokens · finish stop", text)
    assert "step llm scripted:obs-up · chat · fallback 1" in text
    assert re.search(r"model scripted:obs-up · 2 in / 4 out tokens · \$0\.01 · finish stop", text)  # priced model
    assert "tool lookup_customer (call-1)" in text
    assert "decision high_total = True (total=250.0, limit=100)" in text
    assert "note routed to manual review (supplier=ACME)" in text
    assert "6 steps · 8 attempts (2 retries) · 4 model calls" in text
    assert "prompt · user" not in text
    with_content = tether_cmd("trace", run_id, "--content", "--state-dir", str(state)).stdout
    assert "prompt · user: ACME invoice, 250 EUR" in with_content  # tether dev captures content by default
    assert 'response · assistant: {"supplier": "ACME", "total": 250.0}' in with_content


def test_stats_prints_the_figures(dev_runs: tuple[Path, list[str]]) -> None:
    state, _ = dev_runs
    r = tether_cmd("stats", "--since", "1h", "--state-dir", str(state))
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines() if line.strip()}
    assert rows["obs_flaky"][1:6] == ["2", "6", "4", "100.0%", "4"]  # calls, attempts, retries, rate, failed
    assert rows["obs_lookup_customer"][1:5] == ["2", "2", "0", "0.0%"]
    assert rows["scripted:obs-repair"][1:3] == ["4", "0"] and rows["scripted:obs-down"][1:3] == ["2", "2"]
    assert re.fullmatch(r"\d+ms", rows["scripted:obs-repair"][3])  # p50
    assert rows["obs_explained"][1:4] == ["2", "0", "8"] and rows["obs_explained"][-1] == "$0.02"  # 2 x $0.01
    assert "human intervention rate 0.0% (0 of 2 runs asked a person" in r.stdout
    data = json.loads(tether_cmd("stats", "--json", "--state-dir", str(state)).stdout)
    p95 = {m["model"]: m["p95_s"] for m in data["models"]}
    assert p95["scripted:obs-repair"] >= 0 and data["human"]["runs"] == 2


def test_stats_on_an_empty_store_says_so(tmp_path: Path) -> None:
    r = tether_cmd("stats", "--state-dir", str(tmp_path))
    assert r.returncode == 0
    assert "no runs recorded in the last 24h" in r.stdout and "is empty" in r.stdout


def test_trace_of_an_unknown_run_is_one_clear_line(dev_runs: tuple[Path, list[str]], tmp_path: Path) -> None:
    state, _ = dev_runs
    r = tether_cmd("trace", "obs-cli-x", "--state-dir", str(state))
    assert r.returncode == 2 and "no spans of run 'obs-cli-x'" in r.stderr
    assert "stored runs like it: obs-cli-0, obs-cli-1" in r.stderr and "Traceback" not in r.stderr
    missing = tether_cmd("trace", "obs-cli-0", "--state-dir", str(tmp_path))
    assert missing.returncode == 2 and "no span store at" in missing.stderr
    bad = tether_cmd("stats", "--since", "soon", "--state-dir", str(state))
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_a_busy_metrics_port_is_one_clear_line() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = tether_cmd("worker", "tests.apps.obs_flows", "--metrics-port", str(port), "--allow-plaintext")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in r.stderr and "pick another --metrics-port" in r.stderr
