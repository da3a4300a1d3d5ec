"""The import contracts hold for tether, and would catch a break (pyproject's [tool.importlinter])."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

from tests.contracts import strongly_connected

ROOT = Path(__file__).resolve().parents[2]


def _package(tmp_path: Path, name: str, modules: dict[str, str]) -> None:
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for module, source in modules.items():
        (pkg / f"{module}.py").write_text(source)


def test_a_cycle_of_three_modules_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _package(tmp_path, "cyclic_pkg", {"a": "from cyclic_pkg import b\n", "b": "from cyclic_pkg import c\n",
                                      "c": "from cyclic_pkg import a\n", "d": "from cyclic_pkg import a\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic_pkg", cache_dir=None)
    assert strongly_connected(graph, "cyclic_pkg") == [["cyclic_pkg.a", "cyclic_pkg.b", "cyclic_pkg.c"]]


def test_imports_only_for_type_checking_are_not_cycles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _package(tmp_path, "typed_pkg", {
        "a": "from typed_pkg import b\n",
        "b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from typed_pkg import a\n",
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("typed_pkg", cache_dir=None, exclude_type_checking_imports=True)
    assert strongly_connected(graph, "typed_pkg") == []


def test_tether_keeps_its_layers_and_temporalio_stays_in_the_engine() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "3 kept, 0 broken" in done.stdout


def test_an_external_package_outside_its_allowed_modules_is_found(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.contracts import OnlyUnderContract

    _package(tmp_path, "engine_pkg", {"engine": "import json\n", "api": "from json import dumps\n", "core": "x = 1\n"})
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("engine_pkg", cache_dir=None, include_external_packages=True)
    contract = OnlyUnderContract(name="json only in the engine", session_options={},
                                 contract_options={"package": "engine_pkg", "external": "json",
                                                   "allowed": ["engine_pkg.engine"]})
    check = contract.check(graph, verbose=False)
    assert not check.kept
    assert [(module, line) for module, line, _ in check.metadata["found"]] == [("engine_pkg.api", 1)]
