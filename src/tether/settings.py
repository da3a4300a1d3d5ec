"""Every `TETHER_*` setting in one place: read from the environment once, changed explicitly.

Core layer: the standard library, `tether.errors` and `tether.durations` only; runs in every
process (workers, the CLI, Studio, tests). Library code reads `current()`. The CLI and tests
change settings with `use()` or `override()`, never by writing `os.environ`, and hand them to
the processes they start with `child_env()`. A malformed value is refused on first use with
one line naming the variable and the fix. An empty variable counts as unset.

| Variable | Type | Default | What it sets |
|---|---|---|---|
| `TETHER_ADDRESS` | host:port | 127.0.0.1:7233 | Temporal frontend to connect to |
| `TETHER_NAMESPACE` | text | default | Temporal namespace |
| `TETHER_TASK_QUEUE` | text | tether | main task queue; zones get `<queue>@<zone>` |
| `TETHER_TLS_CERT` | file | - | mTLS client certificate |
| `TETHER_TLS_KEY` | file | - | mTLS client key |
| `TETHER_TLS_CA` | file | - | CA bundle of a server with a private CA |
| `TETHER_API_KEY` | secret | - | API key (Temporal Cloud); implies TLS |
| `TETHER_ALLOW_PLAINTEXT` | yes/no | no | talk to a non-local server without a payload key |
| `TETHER_KEYS` | secret | - | payload keys `id:base64key[,…]`, primary first |
| `TETHER_KEY_FILE` | file | - | payload key file (from `tether keys new`) |
| `TETHER_STATE_DIR` | folder | .tether | the project's state: engine, vault, dev key |
| `TETHER_PAYLOAD_STORE` | folder | <state dir>/payloads | claim-check store of large payloads |
| `TETHER_PAYLOAD_THRESHOLD` | bytes | 1048576 | payloads above this go to the payload store |
| `TETHER_VAULT` | file | <state dir>/vault.db | the vault of sensitive values |
| `TETHER_ZONE_DESTINATIONS` | zone=prefix,… | - | model or tool destinations that run inside a zone |
| `TETHER_HEARTBEAT_TIMEOUT` | duration | 10s | heartbeat timeout of steps that set none |
| `TETHER_GRACE` | duration | 30s | on SIGTERM/Ctrl-C, how long steps in flight may take to finish |
| `TETHER_BUILD_ID` | text | - | this deploy's build: workers join a Temporal worker deployment |
| `TETHER_DEPLOYMENT` | text | <task queue> | name of the worker deployment |
| `TETHER_TRACE_STORE` | file | - | keep spans in this SQLite store (`tether dev`: .tether/traces.db) |
| `TETHER_TRACE_RETENTION` | duration | 14d | spans older than this are dropped from the store |
| `TETHER_CAPTURE_CONTENT` | yes/no | per command | record prompts and responses on model spans |
| `TETHER_TELEMETRY` | yes/no | when spans go somewhere | trace and measure runs |
| `TETHER_METRICS_HOST` | host | 127.0.0.1 | interface of the Prometheus endpoint |
| `TETHER_LOG_LEVEL` | level | INFO | root log level (DEBUG, INFO, WARNING, ERROR, CRITICAL) |
| `TETHER_DEBUG` | yes/no | no | tracebacks of CLI errors and failed step attempts |
| `TETHER_MODEL` | model | local:smollm2 | model of calls that name none |
| `TETHER_MODEL_SUBSTITUTES` | JSON object | - | models answering calls to others (tests) |
| `TETHER_BLOCK_CLOUD_MODELS` | yes/no | no | calls to models outside loopback fail (tests) |
| `TETHER_LOCAL_CTX` | count | 4096 | context length of local models |
| `TETHER_LOCAL_THREADS` | count | llama.cpp's | threads of local models |
| `TETHER_MODEL_CACHE` | folder | - | development cache of model calls (sealed with the payload key) |
| `TETHER_STREAM` | yes/no | yes | model steps stream tokens to the run's watchers |
| `TETHER_STREAM_MAX` | count | 8 | model calls a worker process streams at once |
| `TETHER_API_TOKEN` | secret | - | token Studio and `tether serve` ask for |
| `TETHER_API_TOKEN_FILE` | file | - | file of tokens, one per line: NAME:TOKEN or TOKEN |
| `TETHER_HTTPS_CERT` | file | - | Studio / `tether serve` over HTTPS: the certificate |
| `TETHER_HTTPS_KEY` | file | - | Studio / `tether serve` over HTTPS: its private key |
| `TETHER_TEMPORAL_UI` | URL | the dev server's | Temporal Web UI base URL, for Studio's links |

Example:
    >>> from tether import settings
    >>> settings.current().heartbeat_timeout
    datetime.timedelta(seconds=10)
    >>> with settings.override(model="scripted:fake"):
    ...     ...  # this process (and processes started with child_env()) use the fake model
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple

from tether.durations import parse_duration
from tether.errors import UsageError

PREFIX = "TETHER_"


class _Kind(NamedTuple):
    """How a setting is read from its variable's text and written back for a child process."""

    parse: Callable[[str, str], Any]  # (variable name, stripped text) -> value
    show: Callable[[Any], str]


def _yes_no(name: str, raw: str) -> bool:
    low = raw.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise UsageError(f"{name}={raw!r} is not a yes/no value; use 1 or 0")


def _whole(what: str) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        if not (raw.isdigit() and int(raw) > 0):
            raise UsageError(f"{name} must be a whole number {what}, got {raw!r}; fix or unset it")
        return int(raw)
    return parse


def _duration(name: str, raw: str) -> timedelta:
    return parse_duration(raw, what=name)


def _log_level(name: str, raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise UsageError(f"{name}={raw!r} is not a log level; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return level


def _substitutes(name: str, raw: str) -> tuple[tuple[str, str], ...]:
    example = '{"mistral:*": "scripted:fake"}'
    try:
        table = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{name} is not valid JSON ({exc.msg}); expected e.g. {example}") from None
    if not isinstance(table, dict):
        raise UsageError(f"{name}: expected a JSON object, e.g. {example}")
    for pattern, model in table.items():
        if not isinstance(model, str) or ":" not in model:
            raise UsageError(f"{name}: {pattern!r} maps to {model!r}, not a model string such as 'scripted:fake'")
    return tuple((str(k), v) for k, v in table.items())


def _destinations(name: str, raw: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for pair in filter(None, (p.strip() for p in raw.split(","))):
        zone, _, prefix = pair.partition("=")
        if not (zone.strip() and prefix.strip()):
            raise UsageError(f"{name}: {pair!r} is not ZONE=PREFIX; expected e.g. vault=mcp:records,vault=local:")
        pairs.append((prefix.strip(), zone.strip()))
    return tuple(pairs)


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g}s"


TEXT = _Kind(lambda _name, raw: raw, str)
PATH = _Kind(lambda _name, raw: Path(raw), str)
FLAG = _Kind(_yes_no, lambda on: "1" if on else "0")
DURATION = _Kind(_duration, _seconds)
MODEL_PAIRS = _Kind(_substitutes, lambda pairs: json.dumps(dict(pairs)))
ZONE_PAIRS = _Kind(_destinations, lambda pairs: ",".join(f"{zone}={prefix}" for prefix, zone in pairs))


BYTES = _Kind(_whole("of bytes above which payloads go to the payload store (e.g. 1048576 for 1 MB)"), str)
COUNT = _Kind(_whole("above 0"), str)
LOG_LEVEL = _Kind(_log_level, str)


def _about(kind: _Kind = TEXT, *, secret: bool = False) -> dict[str, Any]:
    return {"kind": kind, "secret": secret}


@dataclass(frozen=True)
class Settings:
    """Every `TETHER_*` setting of a process; field `x` is variable `TETHER_X` (see the module table).

    None means unset: the code that uses the setting picks its default.
    """

    # Connection (`tether.engine.connection.Connection` fills in what is unset)
    address: str | None = field(default=None, metadata=_about())
    """Temporal frontend host:port."""
    namespace: str | None = field(default=None, metadata=_about())
    """Temporal namespace."""
    task_queue: str | None = field(default=None, metadata=_about())
    """Main task queue; zones get `<queue>@<zone>`."""
    tls_cert: str | None = field(default=None, metadata=_about())
    """mTLS client certificate file."""
    tls_key: str | None = field(default=None, metadata=_about())
    """mTLS client key file."""
    tls_ca: str | None = field(default=None, metadata=_about())
    """CA bundle of a server with a private CA."""
    api_key: str | None = field(default=None, repr=False, metadata=_about(secret=True))
    """API key (Temporal Cloud); implies TLS."""
    allow_plaintext: bool = field(default=False, metadata=_about(FLAG))
    """Talk to a non-local server without a payload key (it then stores payloads unencrypted)."""

    # Payloads, keys and state
    keys: str | None = field(default=None, repr=False, metadata=_about(secret=True))
    """Payload keys, `id:base64key[,id:base64key…]`, primary first."""
    key_file: str | None = field(default=None, metadata=_about())
    """Payload key file (from `tether keys new`)."""
    state_dir: Path = field(default=Path(".tether"), metadata=_about(PATH))
    """The project's state folder: embedded engine, vault, dev key."""
    payload_store: Path | None = field(default=None, metadata=_about(PATH))
    """Claim-check store of large payloads (unset: `<state_dir>/payloads`)."""
    payload_threshold: int | None = field(default=None, metadata=_about(BYTES))
    """Payloads above this many bytes go to the payload store (unset: 1 MB)."""
    vault: Path | None = field(default=None, metadata=_about(PATH))
    """The vault's SQLite file (unset: `<state_dir>/vault.db`)."""
    zone_destinations: tuple[tuple[str, str], ...] = field(default=(), metadata=_about(ZONE_PAIRS))
    """Model or tool destinations that run inside a zone, as (prefix, zone); the variable is `zone=prefix,…`."""

    # Workers
    heartbeat_timeout: timedelta = field(default=timedelta(seconds=10), metadata=_about(DURATION))
    """Heartbeat timeout of steps that set none."""
    grace: timedelta = field(default=timedelta(seconds=30), metadata=_about(DURATION))
    """On SIGTERM/Ctrl-C, how long steps in flight may take to finish (`tether dev`, `tether worker`)."""
    build_id: str | None = field(default=None, metadata=_about())
    """This deploy's build: workers join Temporal's worker deployment `deployment` as this version."""
    deployment: str | None = field(default=None, metadata=_about())
    """Name of the worker deployment (unset: the main task queue)."""

    # Observability
    trace_store: Path | None = field(default=None, metadata=_about(PATH))
    """Keep finished spans in this SQLite store (`tether dev` sets `<state_dir>/traces.db`)."""
    trace_retention: timedelta = field(default=timedelta(days=14), metadata=_about(DURATION))
    """Spans older than this are dropped from the store."""
    capture_content: bool | None = field(default=None, metadata=_about(FLAG))
    """Record prompts and responses on model spans (unset: the command's default)."""
    telemetry: bool | None = field(default=None, metadata=_about(FLAG))
    """Trace and measure runs (unset: whenever spans or metrics go somewhere)."""
    metrics_host: str = field(default="127.0.0.1", metadata=_about())
    """Interface the Prometheus endpoint binds."""
    log_level: str = field(default="INFO", metadata=_about(LOG_LEVEL))
    """Root log level: DEBUG, INFO, WARNING, ERROR or CRITICAL."""
    debug: bool = field(default=False, metadata=_about(FLAG))
    """Tracebacks of CLI errors and of failed step attempts."""

    # Models
    model: str | None = field(default=None, metadata=_about())
    """Model of calls that name none (unset: `local:smollm2`)."""
    model_substitutes: tuple[tuple[str, str], ...] = field(default=(), metadata=_about(MODEL_PAIRS))
    """Models answering calls to others, as (pattern, model); the variable is a JSON object (tests)."""
    block_cloud_models: bool = field(default=False, metadata=_about(FLAG))
    """Calls to models outside loopback fail with `CloudModelBlocked` (tests)."""
    local_ctx: int = field(default=4096, metadata=_about(COUNT))
    """Context length of local models, in tokens."""
    local_threads: int | None = field(default=None, metadata=_about(COUNT))
    """Threads of local models (unset: llama.cpp's choice)."""
    model_cache: Path | None = field(default=None, metadata=_about(PATH))
    """Development cache of model calls: identical calls answered from this folder (unset: off)."""
    stream: bool = field(default=True, metadata=_about(FLAG))
    """Model steps stream their tokens to the run's watchers (`Run.events()`, `tether run`, Studio)."""
    stream_max: int = field(default=8, metadata=_about(COUNT))
    """Model calls a worker process streams at once (each chunk costs CPU); others are not streamed."""

    # Studio and `tether serve`
    api_token: str | None = field(default=None, repr=False, metadata=_about(secret=True))
    """The token Studio and `tether serve` ask for."""
    api_token_file: Path | None = field(default=None, metadata=_about(PATH))
    """File of tokens, one per line: NAME:TOKEN or TOKEN."""
    https_cert: Path | None = field(default=None, metadata=_about(PATH))
    """Serve HTTPS: the PEM certificate."""
    https_key: Path | None = field(default=None, metadata=_about(PATH))
    """Serve HTTPS: its private key."""
    temporal_ui: str | None = field(default=None, metadata=_about())
    """Temporal Web UI base URL, for Studio's links (unset: the dev server's)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from `environ` (default: `os.environ`).

        Raises:
            UsageError: A variable is set to a value its setting cannot take (one line naming it).
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = (env.get(variable(f.name)) or "").strip()
            if raw:
                values[f.name] = f.metadata["kind"].parse(variable(f.name), raw)
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The variables that give a child process these settings (those that differ from the defaults)."""
        return {variable(f.name): f.metadata["kind"].show(getattr(self, f.name))
                for f in fields(self) if getattr(self, f.name) != f.default}


def variable(name: str) -> str:
    """The environment variable of setting `name` (`heartbeat_timeout` -> `TETHER_HEARTBEAT_TIMEOUT`)."""
    return PREFIX + name.upper()


_FIELDS = {f.name: f for f in fields(Settings)}
VARIABLES = tuple(variable(name) for name in _FIELDS)
"""Every `TETHER_*` variable a setting is read from."""
SECRET_VARIABLES = tuple(variable(n) for n, f in _FIELDS.items() if f.metadata["secret"])
"""Variables whose values are key material or credentials: never quoted in an error line."""


class _Cache:
    """The settings last read, with what they were read from: the TETHER_* variables and overrides."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.overrides: dict[str, Any] = {}
        self.generation = 0  # bumped on every change of overrides
        self.key: tuple[Any, ...] | None = None
        self.settings: Settings | None = None


_cache = _Cache()


def _environment_key() -> tuple[Any, ...]:
    # Called on hot paths (every model call, every sensitive value): os.environ's own dict and
    # pre-encoded names make this ~1 µs, where os.environ.get() for each name costs ~60 µs.
    data = getattr(os.environ, "_data", None)
    if data is None or _ENCODED is None:
        return tuple(os.environ.get(name) for name in VARIABLES)
    return tuple(map(data.get, _ENCODED))


def _encoded(names: tuple[str, ...]) -> tuple[Any, ...] | None:
    encode = getattr(os.environ, "encodekey", None)  # CPython's os._Environ; else the slow path
    return tuple(encode(name) for name in names) if encode is not None else None


_ENCODED = _encoded(VARIABLES)


def current() -> Settings:
    """This process's settings: the environment, read on first use and again when a `TETHER_*`
    variable changes (as `monkeypatch.setenv` does), with `use()`/`override()` changes on top.

    Raises:
        UsageError: A variable holds a malformed value.
    """
    key = (_cache.generation, _environment_key())
    settings = _cache.settings
    if settings is not None and key == _cache.key:
        return settings
    with _cache.lock:
        settings = replace(Settings.from_env(), **_cache.overrides)
        _cache.settings, _cache.key = settings, key
    return settings


def use(**changes: Any) -> Settings:
    """Change settings for this process (and, through `child_env()`, the processes it starts).

    Values may be given typed (`timedelta`, `Path`, `bool`) or as the variable's text
    (`use(heartbeat_timeout="5s")`); None restores the setting's default.

    Raises:
        UsageError: An unknown setting or a malformed value.

    Example:
        >>> settings.use(state_dir=Path("/srv/app/.tether"), allow_plaintext=True)
    """
    typed = {name: _typed(name, value) for name, value in changes.items()}
    with _cache.lock:
        _cache.overrides.update(typed)
        _cache.generation += 1
    return current()


@contextmanager
def override(**changes: Any) -> Iterator[Settings]:
    """`use(**changes)` for the block; every change made inside it (also by `use()`) is undone after.

    Example:
        >>> with settings.override(model="scripted:fake"):
        ...     await client.run(flow, x)
    """
    with _cache.lock:
        before = dict(_cache.overrides)
    try:
        yield use(**changes)
    finally:
        with _cache.lock:
            _cache.overrides = before
            _cache.generation += 1


def reset() -> None:
    """Drop every change made with `use()`: settings come from the environment alone again."""
    with _cache.lock:
        _cache.overrides = {}
        _cache.generation += 1


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process with this process's settings.

    `base` (default: `os.environ`) without its `TETHER_*` settings, plus `current().to_env()`,
    so a setting changed with `use()` reaches the child and one reset to its default is not
    inherited from the parent's environment.
    """
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in VARIABLES}
    return env | current().to_env()


def is_set(name: str) -> bool:
    """True when setting `name` was changed with `use()` or its variable is set (non-empty)."""
    return name in _cache.overrides or bool((os.environ.get(variable(name)) or "").strip())


def secret_values() -> list[tuple[str, str]]:
    """(variable, value) of the secret settings (keys, tokens) set now, even if another setting is malformed."""
    found = [(variable(n), str(_cache.overrides.get(n) or "")) for n, f in _FIELDS.items() if f.metadata["secret"]]
    found += [(name, os.environ.get(name, "")) for name in SECRET_VARIABLES]
    return [(name, value) for name, value in found if value]


def _typed(name: str, value: Any) -> Any:
    f = _FIELDS.get(name)
    if f is None:
        raise UsageError(f"no setting named {name!r}; settings are: {', '.join(_FIELDS)}")
    if value is None or value == "":
        return f.default
    kind = f.metadata["kind"]
    if isinstance(value, str) and kind is not TEXT:
        return kind.parse(variable(name), value.strip())
    return value
