"""Item 9, state on disk: the engine's database, spans, vault and keys are readable by their owner
only (files 0600, the folder 0700, older 0644 files tightened), and `--state-dir` moves the vault and
the payload store along with everything else (nothing lands in ./.tether)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.security._ways_support import REPO, cli
from tether.engine.devserver import DevServer, free_port
from tether.observe._store import SqliteSpanExporter


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_state_files_are_private_and_follow_state_dir(tmp_path: Path) -> None:
    project, state = tmp_path / "project", tmp_path / "state"
    project.mkdir()
    state.mkdir(mode=0o755)
    os.chmod(state, 0o755)
    old_spans = state / "traces.db"  # as written by an older version
    old_spans.touch()
    os.chmod(old_spans, 0o644)
    server = DevServer(state, port=free_port(), ui_port=0).start()
    try:
        env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
               "TETHER_PAYLOAD_THRESHOLD": "200"}  # claim-check every payload, so the store is used
        code, out, err = await cli("run", f"{REPO}/tests/apps/sov_vault.py:sov_report", "--input", '"c1"',
                                   "--state-dir", str(state), cwd=project, env=env, timeout=180,
                                   unset=("TETHER_VAULT", "TETHER_PAYLOAD_STORE", "TETHER_STATE_DIR"))
        assert code == 0, err
        assert "6789" in out  # the run went through its vault step
    finally:
        server.stop()
    assert not (project / ".tether").exists(), sorted(p.name for p in (project / ".tether").iterdir())
    assert _mode(state) == 0o700
    files = {p.name: _mode(p) for p in state.iterdir() if p.is_file()}
    for pattern in ("temporal.db", "traces.db", "vault.db", "keys.json"):
        assert pattern in files, sorted(files)
    for name, mode in files.items():
        if name.startswith(("temporal.db", "traces.db", "vault.db", "keys.json", "server.json", "temporal.log")):
            assert mode == 0o600, f"{name} is {oct(mode)}"
    payloads = state / "payloads"
    assert payloads.is_dir() and any(payloads.iterdir()), "the payload store did not move with --state-dir"
    assert _mode(payloads) == 0o700 or _mode(state) == 0o700  # reachable by this user only


def test_a_span_store_and_a_dev_server_create_private_files(tmp_path: Path) -> None:
    store_file = tmp_path / "spans" / "traces.db"
    exporter = SqliteSpanExporter(store_file)
    exporter.export([])
    exporter.shutdown()
    assert store_file.exists() and _mode(store_file) == 0o600 and _mode(store_file.parent) == 0o700
    with DevServer(tmp_path / "engine", port=free_port(), ui_port=0):
        for f in (tmp_path / "engine").iterdir():
            assert _mode(f) == 0o600, f"{f.name} is {oct(_mode(f))}"
    assert _mode(tmp_path / "engine") == 0o700
