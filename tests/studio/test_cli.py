"""`tether dev` starts Studio and prints its URL; `tether studio APP` serves the same app; both stop on
Ctrl-C. Through the real entry point, against the embedded engine."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.studio.conftest import REPO
from tether.engine.devserver import free_port

APP = "tests/apps/studio_flows.py"


def _start(args: list[str], until: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tether", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        if until in line:
            return proc, "".join(lines)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"`tether {' '.join(args)}` never printed {until!r}:\n" + "".join(lines))


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    return out


def test_dev_serves_studio_and_studio_serves_alone(tmp_path: Path) -> None:
    state, studio_port = tmp_path / "state", free_port()
    dev, banner = _start(["dev", APP, "--port", str(free_port()), "--ui-port", "0", "--state-dir", str(state),
                          "--studio-port", str(studio_port)], until="ready")
    try:
        url = f"http://127.0.0.1:{studio_port}"
        assert f"Studio {url}" in banner
        run = subprocess.run([sys.executable, "-m", "tether", "run", "tests.apps.studio_flows:studio_quick",
                              "--input", "7", "--id", "cli-quick-1", "--state-dir", str(state)],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        with httpx.Client(base_url=url, timeout=30) as http:
            start = http.get("/start")
            assert start.status_code == 200 and "studio_claim" in start.text and "studio_quick" in start.text
            page = http.get("/runs/cli-quick-1")
            assert page.status_code == 200 and "completed" in page.text
            _eventually(lambda: "cli-quick-1" in http.get("/runs").text)
            # `tether dev` keeps spans in <state>/traces.db: the metrics page reads them
            _eventually(lambda: 'id="kpi-runs">1<' in http.get("/metrics").text)
        # a second Studio, alone, for the same project: reuses the running engine
        other_port = free_port()
        studio, line = _start(["studio", APP, "--port", str(other_port), "--state-dir", str(state)],
                              until="tether studio")
        assert f"http://127.0.0.1:{other_port}" in line and "no login (loopback only)" in line
        with httpx.Client(base_url=f"http://127.0.0.1:{other_port}", timeout=30) as http:
            assert "cli-quick-1" in http.get("/runs/cli-quick-1").text
        assert "stopped" in _stop(studio)
        quiet, banner = _start(["dev", APP, "--state-dir", str(state), "--no-studio"], until="ready")
        assert "Studio" not in banner
        _stop(quiet)
    finally:
        out = _stop(dev)
    assert "stopped" in out
    assert not _listening(studio_port)


def _eventually(check: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "never became true"
        time.sleep(0.3)


def _listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    except httpx.TransportError:
        return False
    return True
