"""Helpers for testing tether workflows: a real Temporal dev server per test session.

The pytest plugin (`tether.testing.plugin`, loaded automatically) provides fixtures:
`tether_server` (session-wide dev server) and `tether_client` (a client with a task
queue of its own for each test).
"""

from tether.testing.server import run_worker_process, unique_queue

__all__ = ["run_worker_process", "unique_queue"]
