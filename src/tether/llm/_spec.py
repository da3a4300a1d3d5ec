"""Model strings (`provider:model`): parsing, providers and endpoints, readiness checks.

Pure Python, importable anywhere; the checks read the environment of the process that
calls them (a worker, or the workflow code that validates before scheduling).
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import util as importlib_util
from typing import Literal
from urllib.parse import urlparse

from tether import settings
from tether.errors import CloudModelBlocked, ConfigError, UsageError
from tether.llm._types import ModelCall, ModelReply

Kind = Literal["cloud", "endpoint", "local", "scripted"]

"""When "1", calls to models outside loopback fail with `CloudModelBlocked` (set by the test plugin)."""

EXAMPLES = "e.g. 'mistral:mistral-small-latest', 'openai:gpt-4.1-mini' or 'local:smollm2'"


@dataclass(frozen=True)
class CloudProvider:
    """A hosted provider reached through pydantic-ai's model classes."""

    key_env: str
    base_url_env: str
    default_url: str


CLOUD = {
    "openai": CloudProvider("OPENAI_API_KEY", "OPENAI_BASE_URL", "https://api.openai.com/v1"),
    "mistral": CloudProvider("MISTRAL_API_KEY", "MISTRAL_BASE_URL", "https://api.mistral.ai"),
    "anthropic": CloudProvider("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
}


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server (vLLM, Ollama, LM Studio, llama.cpp server) known by name."""

    base_url: str
    key_env: str | None = None
    base_url_env: str | None = None

    def url(self) -> str:
        """The base URL, from its environment variable when set."""
        return (os.environ.get(self.base_url_env) if self.base_url_env else None) or self.base_url


endpoints: dict[str, Endpoint] = {
    "ollama": Endpoint("http://127.0.0.1:11434/v1", key_env="OLLAMA_API_KEY", base_url_env="OLLAMA_BASE_URL"),
}

Backend = Callable[[ModelCall], Awaitable[ModelReply]]
"""A function that answers one model call (used for scripted models)."""

scripted: dict[str, Backend] = {}
"""Scripted models by name, registered by `tether.testing.ScriptedModel`."""

_RESERVED = {*CLOUD, "openai-compatible", "local", "scripted"}


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model string.

    Attributes:
        text: The model string as given.
        provider: "openai", "mistral", "anthropic", "openai-compatible", "local", "scripted",
            or the name of an endpoint ("ollama", or one added with `register_endpoint`).
        name: The model's name at the provider (for `local:`, "smollm2" or a file path).
        kind: "cloud", "endpoint", "local" or "scripted".
        base_url: Where requests go (cloud and endpoint models).
        key_env: The environment variable holding the API key, if any.
    """

    text: str
    provider: str
    name: str
    kind: Kind
    base_url: str | None = None
    key_env: str | None = None

    @property
    def price_key(self) -> str:
        """The key under which the price table lists this model (`provider:name`)."""
        return f"{self.provider}:{self.name}"

    def __str__(self) -> str:
        return self.text


def parse_model(text: object) -> ModelSpec:
    """Parse a `provider:model` string.

    Raises:
        UsageError: The string is malformed or names an unknown provider; the message
            lists the providers and shows an example.

    Example:
        >>> parse_model("mistral:mistral-small-latest").provider
        'mistral'
    """
    if not isinstance(text, str) or ":" not in text:
        raise UsageError(f"model {text!r} is not a 'provider:model' string ({EXAMPLES})")
    provider, _, name = text.partition(":")
    provider, name = provider.strip().lower(), name.strip()
    if not provider or not name or text != text.strip():
        raise UsageError(f"model {text!r} is not a 'provider:model' string ({EXAMPLES})")
    if provider in CLOUD:
        cloud = CLOUD[provider]
        return ModelSpec(text, provider, name, "cloud", base_url=os.environ.get(cloud.base_url_env)
                         or cloud.default_url, key_env=cloud.key_env)
    if provider == "openai-compatible":
        return _compatible(text, name)
    if provider in endpoints:
        ep = endpoints[provider]
        return ModelSpec(text, provider, name, "endpoint", base_url=ep.url(), key_env=ep.key_env)
    if provider in ("local", "scripted"):
        return ModelSpec(text, provider, name, provider)  # type: ignore[arg-type]
    known = ", ".join([*CLOUD, "openai-compatible", *endpoints, "local", "scripted"])
    raise UsageError(f"unknown model provider {provider!r} in {text!r}; use one of: {known} "
                     "(or add an OpenAI-compatible server with tether.llm.register_endpoint)")


def _compatible(text: str, rest: str) -> ModelSpec:
    name, sep, url = rest.rpartition("@")
    parsed = urlparse(url)
    if not sep or not name or parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"model {text!r}: write OpenAI-compatible servers as "
                         "'openai-compatible:MODEL@http://HOST:PORT/v1'")
    return ModelSpec(text, "openai-compatible", name, "endpoint", base_url=url.rstrip("/"),
                     key_env="OPENAI_COMPATIBLE_API_KEY")


def register_endpoint(name: str, base_url: str, *, api_key_env: str | None = None) -> None:
    """Name an OpenAI-compatible server so models on it can be written `name:model`.

    Args:
        name: The provider prefix to use in model strings (e.g. "vllm").
        base_url: The server's API root, e.g. "http://gpu-box:8000/v1".
        api_key_env: Environment variable holding its API key, if it needs one.

    Example:
        >>> register_endpoint("vllm", "http://10.0.0.5:8000/v1")
        >>> # then: await llm.chat("hi", model="vllm:Qwen/Qwen2.5-7B-Instruct")
    """
    parsed = urlparse(base_url)
    if not name or not name.replace("-", "").replace("_", "").isalnum() or name != name.lower():
        raise UsageError(f"endpoint name {name!r}: use lowercase letters, digits, '-' or '_'")
    if name in _RESERVED:
        raise UsageError(f"endpoint name {name!r} is a built-in provider; pick another name")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"endpoint {name!r}: base_url {base_url!r} is not an http(s) URL")
    endpoints[name] = Endpoint(base_url.rstrip("/"), key_env=api_key_env)


def check_ready(spec: ModelSpec) -> None:
    """Raise if this process cannot call the model: a missing key, extra or scripted model.

    Raises:
        ConfigError: A required API key is not set, the `tether[local]` extra is not
            installed, a local model file does not exist, or a scripted model is unknown.
        CloudModelBlocked: The cloud guard is on and the model is not on loopback.
    """
    if spec.kind == "cloud" and not os.environ.get(spec.key_env or ""):
        raise ConfigError(f"{spec.key_env} is not set: export it to use {spec.text!r}, or pick "
                          "another model (e.g. 'local:smollm2', which runs offline)")
    if spec.kind == "local":
        from tether.llm._local import check_local

        check_local(spec)
    if spec.kind == "scripted" and spec.name not in scripted:
        names = ", ".join(sorted(scripted)) or "none"
        raise ConfigError(f"no scripted model named {spec.name!r} in this process (known: {names}); "
                          "create it with tether.testing.ScriptedModel in a module the worker imports")
    if spec.base_url and guard_on() and not is_loopback(spec.base_url):
        raise CloudModelBlocked(spec.text, spec.base_url)


def guard_on() -> bool:
    """True when calls to non-loopback models must fail (the test suite's cloud guard)."""
    return settings.current().block_cloud_models


def is_loopback(url: str) -> bool:
    """True for URLs on this machine (localhost, 127.0.0.0/8, ::1)."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def available(model: str) -> bool:
    """True when `model` can be called from this process (key set, extra installed, not blocked)."""
    try:
        check_ready(parse_model(model))
    except (ConfigError, CloudModelBlocked):
        return False
    return True


def require(*models: str) -> None:
    """Check now, e.g. at the top of an app module, that this process can call `models`, so a
    missing key or extra stops `tether run` / `tether worker` before any run starts.

    Raises:
        UsageError: A model string is malformed.
        ConfigError: A key, extra, file or scripted model is missing here.

    Example:
        >>> require("mistral:mistral-small-latest")   # ConfigError: MISTRAL_API_KEY is not set: …
    """
    for model in models:
        check_ready(parse_model(model))


def first_available(*models: str) -> str:
    """The first of `models` this process can call; handy for "cloud if a key is set, else local".

    Raises:
        ConfigError: None of them is usable; the message says why for each.

    Example:
        >>> SMART = first_available("mistral:mistral-large-latest", "local:smollm2")
    """
    reasons = []
    for model in models:
        try:
            check_ready(parse_model(model))
            return model
        except (ConfigError, CloudModelBlocked) as exc:
            reasons.append(str(exc))
    raise ConfigError("no usable model among " + ", ".join(map(repr, models)) + ": " + "; ".join(reasons))


def local_extra_installed() -> bool:
    """True when llama-cpp-python (the `tether[local]` extra) can be imported."""
    try:
        return importlib_util.find_spec("llama_cpp") is not None
    except (ImportError, ValueError):
        return False
