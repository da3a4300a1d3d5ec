"""Suite-wide setup: isolated stores, and the lanes (markers) that `scripts/test.sh --fast` selects by.

Stores that default to ./.tether/ go to a temp folder for the session, set in the environment
so worker processes started by tests share them.

Markers, set here so a test need not remember them: `server` (a Temporal dev server, a worker
process or the CLI: any test using the `tether_server` fixture, and the tests named below),
`local_model` (SmolLM2 through llama.cpp), `browser` (Chromium), `slow` (the chaos suite, and the
DBOS side of the peers benchmark). The
fast lane runs the rest, and fails any test in it that starts a server or a `tether` process,
so a missing marker shows up at once.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAST_LANE = os.environ.get("TETHER_FAST_LANE") == "1"

SERVER = {  # modules (or module::test) that start servers, workers or the CLI themselves, not via the fixture
    "tests/engine/test_cli.py", "tests/engine/test_dev.py", "tests/engine/test_durability.py",
    "tests/engine/test_liveness.py", "tests/engine/test_sandbox.py", "tests/engine/test_stuck.py",
    "tests/engine/test_worker_processes.py",
    "tests/human/test_cli.py", "tests/observe/test_cli.py", "tests/observe/test_export.py",
    "tests/studio/test_cli.py", "tests/security/test_low.py", "tests/security/test_state_files.py",
    "tests/security/test_audit_identity.py", "tests/agent/test_mcp.py", "tests/agent/test_mcp_serve.py",
    "tests/sovereignty/test_zones.py::test_dev_runs_zones_in_separate_processes",
    "tests/security/test_error_causes.py", "tests/security/test_plaintext.py",
    "tests/engine/test_streaming.py::test_tether_dev_prints_each_new_run_as_it_goes",
    "tests/engine/test_streaming.py::test_tether_dev_follows_a_batch_live_up_to_its_cap_and_lists_the_rest",
}
LOCAL_MODEL = {"tests/llm/test_local.py", "tests/llm/test_local_isolation.py", "tests/llm/test_example.py",
               "tests/agent/test_example.py", "tests/sovereignty/test_claims_e2e.py",
               "tests/llm/test_models.py::test_any_gguf_file_loads"}
BROWSER = {"tests/studio/test_browser.py"}
SLOW = {"tests/engine/test_chaos.py", "tests/unit/test_peers_dbos.py"}  # the latter: importing DBOS takes seconds


def pytest_configure(config: pytest.Config) -> None:
    root = tempfile.mkdtemp(prefix="tether-tests-")
    os.environ.setdefault("TETHER_VAULT", os.path.join(root, "vault.db"))
    os.environ.setdefault("TETHER_PAYLOAD_STORE", os.path.join(root, "payloads"))
    # tether.testing's cloud guard is a setting of this process (and of child_env()); the `tether`
    # processes tests start with a copy of os.environ get it from here.
    os.environ.setdefault("TETHER_BLOCK_CLOUD_MODELS", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = Path(str(item.fspath)).resolve().relative_to(ROOT).as_posix()
        names = {module, f"{module}::{item.name.split('[')[0]}"}
        if "tether_server" in getattr(item, "fixturenames", ()) or names & SERVER:
            item.add_marker(pytest.mark.server)
        for marker, listed in ((pytest.mark.local_model, LOCAL_MODEL), (pytest.mark.browser, BROWSER),
                               (pytest.mark.slow, SLOW)):
            if names & listed:
                item.add_marker(marker)


if FAST_LANE:

    @pytest.fixture(autouse=True)
    def _no_servers_in_the_fast_lane(monkeypatch: pytest.MonkeyPatch) -> None:
        """Fail a fast-lane test that starts a server or a tether process: it needs a marker."""
        from tether.engine.devserver import DevServer

        def refuse(what: str) -> Any:
            raise AssertionError(f"this test {what}; mark it `server` (tests/conftest.py) to keep it "
                                 "out of the fast lane")

        popen = subprocess.Popen.__init__

        def guarded(self: subprocess.Popen[Any], args: Any, *a: Any, **kw: Any) -> None:
            text = " ".join(map(str, args)) if isinstance(args, list | tuple) else str(args)
            if "tether" in text or "temporal" in text:
                refuse(f"runs `{text[:80]}`")
            popen(self, args, *a, **kw)

        monkeypatch.setattr(DevServer, "start", lambda self, *a, **kw: refuse("starts a Temporal dev server"))
        monkeypatch.setattr(subprocess.Popen, "__init__", guarded)
