"""Helpers for testing tether workflows: a real Temporal dev server per test session.

The pytest plugin (`tether.testing.plugin`, loaded automatically) provides fixtures:
`tether_server` (session-wide dev server) and `tether_client` (a client with a task
queue of its own for each test), and turns on the cloud-model guard. For model calls:
`ScriptedModel` (replies from a script, as `scripted:NAME`) and `ChatServer` (a real
OpenAI-compatible HTTP server on loopback answering from a script). `replay(app, "h.json")`
checks that exported runs still replay with the current code.
"""

from tether.testing.chat_server import ChatServer, Received, Reply
from tether.testing.chat_server import error as chat_error
from tether.testing.chat_server import reply as chat_reply
from tether.testing.guard import block_cloud_models
from tether.testing.replay import ReplayIncompatible, replay
from tether.testing.scripted import ScriptedModel, final, tool_call, tool_calls
from tether.testing.server import run_worker_process, unique_queue
from tether.testing.waiting import eventually

__all__ = ["ChatServer", "Received", "ReplayIncompatible", "Reply", "ScriptedModel", "block_cloud_models",
           "chat_error", "chat_reply", "eventually", "final", "replay", "run_worker_process", "tool_call",
           "tool_calls", "unique_queue"]
