"""Suite-wide isolation: stores that default to ./.tether/ go to a temp folder for the session.

Set in the environment so worker processes started by tests share them.
"""

from __future__ import annotations

import os
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    root = tempfile.mkdtemp(prefix="tether-tests-")
    os.environ.setdefault("TETHER_VAULT", os.path.join(root, "vault.db"))
    os.environ.setdefault("TETHER_PAYLOAD_STORE", os.path.join(root, "payloads"))
