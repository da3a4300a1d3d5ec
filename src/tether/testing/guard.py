"""The cloud-model guard: in tests, any call to a model outside this machine fails loudly.

Works through an environment variable, so worker processes a test starts inherit it.
"""

from __future__ import annotations

import os

from tether.llm._spec import BLOCK_ENV


def block_cloud_models() -> None:
    """Make calls to models outside loopback raise `CloudModelBlocked` in this process and
    in processes it starts (unless TETHER_BLOCK_CLOUD_MODELS is already set, e.g. to "0")."""
    os.environ.setdefault(BLOCK_ENV, "1")
