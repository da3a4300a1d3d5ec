"""The development model-call cache: identical calls answered from an encrypted local folder.

Runs on workers, around the provider call of the model step (`_step.py`). Off unless
`TETHER_MODEL_CACHE` names a folder; for development and tests, where re-running a workflow
should not pay for (or wait on) the same prompt twice. Never used for a call that carries a
sensitive value, and never without a payload key: entries are sealed like Temporal payloads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from tether import _runtime, settings
from tether._files import private_file, private_folder
from tether._sensitive import carries_sensitive
from tether.llm._types import ModelCall, ModelReply, Usage

KEYED_FIELDS = frozenset({"model", "messages", "temperature", "max_tokens", "output_schema", "output_name", "tools"})
"""What makes two calls identical: the model, the conversation, the output wanted and the parameters."""

_log = logging.getLogger("tether.llm.cache")
_warned: set[str] = set()

Ask = Callable[[ModelCall], Awaitable[ModelReply]]


def cache_dir() -> Path | None:
    """The cache folder configured for this process (`TETHER_MODEL_CACHE`), or None when the cache is off."""
    return settings.current().model_cache


def cache_key(call: ModelCall) -> str:
    """A digest of what the model is asked (not of which round or fallback asks it)."""
    keyed = call.model_dump(mode="json", include=set(KEYED_FIELDS))
    return hashlib.sha256(json.dumps(keyed, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def cached(ask: Ask) -> Ask:
    """Wrap a model call so identical calls are answered from the cache when it is on."""

    async def answer(call: ModelCall) -> ModelReply:
        folder = cache_dir()
        if folder is None or not _usable(call):
            return await ask(call)
        rt = _runtime.current()
        entry = folder / f"{cache_key(call)}.bin"
        if entry.is_file():
            reply: ModelReply = await rt.unseal(entry.read_bytes(), ModelReply)
            return reply.model_copy(update={"cached": True, "cost": 0.0, "usage": Usage(), "seconds": 0.0})
        reply = await ask(call)
        _store(entry, await rt.seal(reply.model_copy(update={"transcript": None})))
        return reply

    return answer


def _usable(call: ModelCall) -> bool:
    if carries_sensitive(call.model_dump(mode="json")):
        return False  # sensitive values stay in their zone's vault, never in a cache
    if not _runtime.current().seals_privately():
        _warn_once("nokey", "TETHER_MODEL_CACHE is set but this worker has no payload key, so model replies would be "
                            "stored in plaintext: the cache stays off (`tether dev` makes a key; or set "
                            "TETHER_KEY_FILE)")
        return False
    return True


def _store(entry: Path, data: bytes) -> None:
    private_folder(entry.parent)
    partial = private_file(entry.with_suffix(f".{os.getpid()}.part"))
    partial.write_bytes(data)
    partial.replace(entry)  # readers see a whole entry or none


def _warn_once(what: str, message: str) -> None:
    if what not in _warned:
        _warned.add(what)
        _log.warning(message)
