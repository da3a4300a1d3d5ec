"""Test helpers around the real dev server: unique queues and worker processes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Sequence

from tether import settings


def unique_queue(prefix: str = "test") -> str:
    """A task queue name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def run_worker_process(app: str, *, address: str, task_queue: str,
                       queues: Sequence[str] | None = None,
                       env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `tether worker APP` as a separate process (to kill it like a crash would).

    The worker uses the payload keys configured in `env` (default: this process's settings,
    `tether.settings.child_env()`); without any it runs unencrypted, like the in-process test client.
    """
    cmd = [sys.executable, "-m", "tether", "worker", app, "--address", address,
           "--task-queue", task_queue, "--allow-plaintext"]
    if queues:
        cmd += ["--queues", ",".join(queues)]
    return subprocess.Popen(cmd, env=settings.child_env() if env is None else env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
