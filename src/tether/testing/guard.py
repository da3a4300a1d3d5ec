"""The cloud-model guard: in tests, any call to a model outside this machine fails loudly.

Works through the `block_cloud_models` setting, so worker processes a test starts with
`tether.settings.child_env()` (as `run_worker_process` does) inherit it.
"""

from __future__ import annotations

from tether import settings


def block_cloud_models() -> None:
    """Make calls to models outside loopback raise `CloudModelBlocked` in this process and
    in processes it starts (unless TETHER_BLOCK_CLOUD_MODELS is already set, e.g. to "0")."""
    if not settings.is_set("block_cloud_models"):
        settings.use(block_cloud_models=True)
