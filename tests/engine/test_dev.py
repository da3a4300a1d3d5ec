"""`tether dev`: the embedded engine with a worker, reused by later commands, stopped by Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.engine.test_cli import REPO, tether_cmd
from tether.engine.devserver import free_port, running_server


def _start_dev(state: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tether", "dev", "tests/apps/basics.py", "--port", str(port),
                             "--ui-port", "0", "--state-dir", str(state)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if "ready" in line:
            return proc, "".join(lines)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("tether dev did not become ready:\n" + "".join(lines))


def test_dev_serves_runs_is_reused_and_stops_cleanly(tmp_path: Path) -> None:
    state, port = tmp_path / "state", free_port()
    dev, banner = _start_dev(state, port)
    assert f"engine 127.0.0.1:{port}" in banner and "(reused)" not in banner
    try:
        info = running_server(state)
        assert info is not None and info.address.endswith(f":{port}")
        assert (state / "temporal.db").exists()
        # tether run finds the running engine and its worker: no --address needed
        r = tether_cmd("run", "tests.apps.basics:fan_out", "--input", "3", "--state-dir", str(state))
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == [0, 2, 4]
        assert "no worker" not in r.stderr
        second, banner = _start_dev(state, free_port())
        assert f"engine 127.0.0.1:{port} (reused)" in banner
        second.send_signal(signal.SIGINT)
        assert second.wait(30) == 0
        assert running_server(state) is not None, "a reusing `tether dev` leaves the engine running"
        busy = tether_cmd("dev", "tests/apps/basics.py", "--port", str(port), "--state-dir", str(tmp_path / "other"))
        assert busy.returncode == 1
        assert f"port {port} on 127.0.0.1 is already in use" in busy.stderr
    finally:
        dev.send_signal(signal.SIGINT)
        code = dev.wait(30)
    assert code == 0
    assert running_server(state) is None
    # the run is kept in the persistent store: a later command reads it from the same folder
    listed = tether_cmd("runs", "--json", "--state-dir", str(state))
    assert [r["workflow"] for r in json.loads(listed.stdout)] == ["fan_out"]


def _start_dev_app(app: Path, state: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "tether", "dev", str(app), "--port", str(port), "--ui-port", "0",
                             "--state-dir", str(state), "--no-studio"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "ready" in line:
            return proc
    raise AssertionError("tether dev did not become ready")


def test_dev_says_once_when_the_app_changes_and_stop_ends_a_left_engine(tmp_path: Path) -> None:
    app = tmp_path / "flows.py"
    app.write_text((REPO / "tests" / "apps" / "basics.py").read_text())
    state, port = tmp_path / "state", free_port()
    owner = _start_dev_app(app, state, port)
    try:
        reuser = _start_dev_app(app, state, free_port())
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(reuser.stdout or []), daemon=True)
        reader.start()
        deadline = time.monotonic() + 30
        while not any("changed:" in line for line in lines):  # edit until the watcher notices
            assert time.monotonic() < deadline, "".join(lines)
            app.write_text(app.read_text() + "\n# edited\n")
            reader.join(0.3)
        for _ in range(3):  # further edits are not announced again
            app.write_text(app.read_text() + "\n# edited again\n")
            reader.join(0.5)
        reuser.send_signal(signal.SIGINT)
        reuser.wait(60)
        reader.join(10)
        out = "".join(lines)
        assert "flows.py changed: workflow code is re-read for every run, but steps still run the code" in out
        assert out.count("changed:") == 1
        assert f"the engine at 127.0.0.1:{port} keeps running" in out and "tether dev --stop" in out
    finally:
        owner.kill()
        owner.wait()
    assert running_server(state) is not None, "killed abruptly, the owner left its engine behind"
    stopped = tether_cmd("dev", "--stop", "--state-dir", str(state))
    assert stopped.returncode == 0 and f"stopped the engine at 127.0.0.1:{port}" in stopped.stdout
    assert running_server(state) is None
    again = tether_cmd("dev", "--stop", "--state-dir", str(state))
    assert again.returncode == 0 and "no engine runs for" in again.stdout
