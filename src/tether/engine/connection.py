"""Connection settings for a Temporal server or cluster, shared by the client, worker and CLI.

Every setting can come from an argument or a `TETHER_*` environment variable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from temporalio.client import Client as TemporalClient
from temporalio.converter import PayloadCodec
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RetryConfig, TLSConfig

from tether import settings
from tether.engine import tracing
from tether.engine.codec import codec_from_env
from tether.engine.converter import data_converter
from tether.errors import ConfigError, ServerUnavailable

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_QUEUE = "tether"


@dataclass(frozen=True)
class Connection:
    """Where the Temporal server is and how to authenticate.

    Attributes:
        address: host:port of the frontend (Temporal Cloud: `<ns>.<acct>.tmprl.cloud:7233`).
        namespace: Temporal namespace.
        task_queue: Main task queue of this deployment; zones get `<queue>@<zone>`.
        tls_cert / tls_key: Client certificate and key files for mTLS.
        tls_ca: CA bundle for servers with a private CA.
        api_key: API key (Temporal Cloud); implies TLS.
        codec: Payload codec (encryption, claim checks); default: `tether.engine.codec.codec_from_env()`.
        telemetry: Trace and measure runs through this client and its workers (None: when
            `TETHER_TELEMETRY` says so or spans/metrics go anywhere; see `tether.observe`).
        allow_plaintext: Connect without a payload key to a server that is not a local dev
            server (also `TETHER_ALLOW_PLAINTEXT=1` or `tether --allow-plaintext`); without
            it `connect` refuses, so inputs and answers never reach such a server unencrypted.
    """

    address: str = DEFAULT_ADDRESS
    namespace: str = "default"
    task_queue: str = DEFAULT_QUEUE
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    api_key: str | None = None
    codec: PayloadCodec | None = field(default=None, repr=False, compare=False)
    telemetry: bool | None = field(default=None, compare=False)
    allow_plaintext: bool = field(default=False, compare=False)

    @classmethod
    def from_env(cls, **overrides: str | None) -> Connection:
        """Settings from `TETHER_ADDRESS`, `TETHER_NAMESPACE`, `TETHER_TASK_QUEUE`,
        `TETHER_TLS_CERT`, `TETHER_TLS_KEY`, `TETHER_TLS_CA`, `TETHER_API_KEY`, with
        non-None `overrides` taking precedence."""
        values: dict[str, Any] = {}
        configured = settings.current()
        for f in ("address", "namespace", "task_queue", "tls_cert", "tls_key", "tls_ca", "api_key"):
            v = overrides.get(f)
            if v is None:
                v = getattr(configured, f)
            if v is not None:
                values[f] = v
        return replace(cls(), **values)

    @property
    def explicit(self) -> bool:
        """True when an address was configured (argument or environment)."""
        return self.address != DEFAULT_ADDRESS or settings.current().address is not None

    def tls(self) -> TLSConfig | bool:
        """The TLS configuration implied by the settings."""
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("mTLS needs both a client certificate and its key "
                              "(--tls-cert and --tls-key, or TETHER_TLS_CERT and TETHER_TLS_KEY)")
        if not (self.tls_cert or self.tls_ca):
            return bool(self.api_key)
        return TLSConfig(
            client_cert=_read(self.tls_cert, "TLS client certificate"),
            client_private_key=_read(self.tls_key, "TLS client key"),
            server_root_ca_cert=_read(self.tls_ca, "TLS CA bundle"),
        )

    async def connect(self, *, patient: bool = False) -> TemporalClient:
        """Open a Temporal client with tether's data converter.

        Args:
            patient: Retry calls through a server outage of up to two minutes (workers: a step
                result reported while the server restarts is kept) instead of ten seconds.

        Raises:
            ServerUnavailable: Nothing answered at the address.
        """
        codec = self.payload_codec()
        self._refuse_plaintext(codec)
        try:
            return await TemporalClient.connect(
                self.address, namespace=self.namespace, tls=self.tls(), api_key=self.api_key,
                runtime=core_runtime(), retry_config=_PATIENT if patient else None,
                data_converter=data_converter(codec),
                interceptors=tracing.client_interceptors(self.telemetry),
            )
        except RuntimeError as exc:
            raise ServerUnavailable(self.address, _short(exc)) from None

    @property
    def local_dev(self) -> bool:
        """True for a server on this machine (loopback address, no TLS, no API key): a dev server."""
        host = self.address.rsplit(":", 1)[0].strip("[]").lower()
        plain = not (self.api_key or self.tls_cert or self.tls_ca)
        return plain and (host in ("localhost", "::1") or host.startswith("127."))

    def _refuse_plaintext(self, codec: PayloadCodec) -> None:
        if getattr(codec, "keyring", None) is not None or self.local_dev:
            return
        if self.allow_plaintext or settings.current().allow_plaintext:
            return
        raise ConfigError(f"no payload key is configured, so inputs and results would reach {self.address} "
                          "unencrypted; set TETHER_KEY_FILE (or TETHER_KEYS) to the key file your workers "
                          "use, or pass --allow-plaintext (TETHER_ALLOW_PLAINTEXT=1, "
                          "Connection(allow_plaintext=True)) to send plaintext on purpose")

    def payload_codec(self) -> PayloadCodec:
        """The codec payloads pass through: `codec`, else the keys configured in the environment."""
        return self.codec if self.codec is not None else codec_from_env()


_PATIENT = RetryConfig(max_interval_millis=5_000, max_elapsed_time_millis=120_000, max_retries=60)

_runtime: Runtime | None = None


def core_runtime() -> Runtime:
    """The SDK core's runtime for this process, its log lines forwarded to Python logging
    (logger `temporalio.core`), so they take the configured format: JSON lines or plain
    text, never the core's own ANSI-coloured console output."""
    global _runtime
    if _runtime is None:
        forwarding = LogForwardingConfig(logger=logging.getLogger("temporalio.core"))
        _runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
            filter=TelemetryFilter(core_level="WARN", other_level="ERROR"), forwarding=forwarding)))
    return _runtime


def _read(path: str | None, what: str) -> bytes | None:
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} {path!r}: {exc.strerror}") from None


_REASONS = (("connectionrefused", "connection refused"), ("connection refused", "connection refused"),
            ("dns error", "unknown host"), ("failed to lookup", "unknown host"),
            ("timed out", "timed out"), ("deadline", "timed out"), ("certificate", "TLS certificate rejected"))


def _short(exc: BaseException) -> str:
    """Why a connection failed, in a few whole words (the native error is a long Rust debug string)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    low = text.lower()
    for needle, reason in _REASONS:
        if needle in low:
            return reason
    if len(text) <= 300:
        return text
    return text[:300].rsplit(" ", 1)[0] + " …"
