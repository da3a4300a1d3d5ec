"""Fixtures for the agent tests: a payload store of their own and a log of what ran."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True, scope="session")
def _payload_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Stored conversations go to a temporary store (worker subprocesses inherit it)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TETHER_PAYLOAD_STORE", str(tmp_path_factory.mktemp("payloads")))
    mp.setenv("TETHER_VAULT", str(tmp_path_factory.mktemp("vault") / "vault.db"))
    yield
    mp.undo()


class RunLog:
    """The lines tests/apps/agent_flows.py appends for every tool and model call."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self, kind: str | None = None, **match: Any) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
        return [r for r in rows if (kind is None or r["kind"] == kind)
                and all(r.get(k) == v for k, v in match.items())]


@pytest.fixture
def run_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunLog:
    path = tmp_path / "agent-log.jsonl"
    monkeypatch.setenv("AGENT_LOG", str(path))
    return RunLog(path)
