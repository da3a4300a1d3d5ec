"""Process-wide telemetry setup: the tracer provider, span sinks, metric readers, settings.

Runs in every process that uses tether (workers, the CLI, tests). Spans go to the sinks
configured here: the local SQLite store (`tether dev`), OTLP (the standard
`OTEL_EXPORTER_OTLP_*` variables) and in-memory captures (tests). The tracer provider is
Temporal's replay-safe one, so spans made in workflow code are not duplicated on replay.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tether import settings
from tether._version import __version__
from tether.errors import ConfigError
from tether.observe._store import SqliteSpanExporter

TRACER_NAME = "tether"
STORE_ENV = "TETHER_TRACE_STORE"
GENAI_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
STORE_FILE = "traces.db"
"""The local span store's file name inside the state folder (`.tether/traces.db`)."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_flag(name: str) -> bool | None:
    """True/False for a yes/no environment variable, None when unset or empty.

    Raises:
        ConfigError: The value is not a yes/no word.
    """
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name}={os.environ[name]!r} is not a yes/no value; use 1 or 0")


class _Sinks(SpanProcessor):
    """Fans finished spans out to the processors configured now (they can change at run time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.processors: tuple[SpanProcessor, ...] = ()

    def add(self, processor: SpanProcessor) -> None:
        with self._lock:
            self.processors = (*self.processors, processor)

    def remove(self, processor: SpanProcessor) -> None:
        with self._lock:
            self.processors = tuple(p for p in self.processors if p is not processor)

    def on_start(self, span: SdkSpan, parent_context: Context | None = None) -> None:
        for p in self.processors:
            p.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for p in self.processors:
            p.on_end(span)

    def shutdown(self) -> None:
        for p in self.processors:
            p.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(p.force_flush(timeout_millis) for p in self.processors)


@dataclass
class _State:
    provider: Any = None  # ReplaySafeTracerProvider, once installed
    tracer: Any = None
    sinks: _Sinks = field(default_factory=_Sinks)
    store: Path | None = None
    store_processor: SpanProcessor | None = None
    otlp_traces: bool = False
    capture_content: bool | None = None
    readers: list[MetricReader] = field(default_factory=list)
    meter_provider: MeterProvider | None = None
    metrics_server: Any = None
    metrics_address: tuple[str, int] | None = None
    otlp_metrics: bool = False


_state = _State()
_lock = threading.RLock()


# ---- tracing --------------------------------------------------------------------------


def tracer_provider() -> Any:
    """The process's replay-safe tracer provider, installed as the global one on first use.

    Raises:
        ConfigError: Another, non-replay-safe tracer provider was installed first.
    """
    with _lock:
        if _state.provider is None:
            _state.provider = _install_provider()
        return _state.provider


class ProviderMaker(Protocol):
    """How the engine wants tracer providers made (workflow spans must survive replay)."""

    def accepts(self, provider: Any) -> bool:
        """True if an application's own `provider` will do (then tether adds its processors)."""

    def create(self, resource: Resource) -> Any:
        """A new tracer provider with `resource`."""


class _PlainProvider:
    def accepts(self, provider: Any) -> bool:
        return False

    def create(self, resource: Resource) -> Any:
        return TracerProvider(resource=resource, shutdown_on_exit=False)


_maker: ProviderMaker = _PlainProvider()


def use_provider_maker(maker: ProviderMaker) -> None:
    """Let the engine choose the kind of tracer provider (called when `tether.engine` is imported)."""
    global _maker
    _maker = maker


def _install_provider() -> Any:
    current = trace.get_tracer_provider()
    if _maker.accepts(current):  # the application set one up itself
        current.add_span_processor(_state.sinks)  # type: ignore[attr-defined]
        return current
    provider = _maker.create(_resource())
    provider.add_span_processor(_state.sinks)
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        raise ConfigError(
            "an OpenTelemetry tracer provider was set before tether could install its own; create it "
            "with temporalio.contrib.opentelemetry.create_tracer_provider() (workflow spans must be "
            "replay-safe) or set it up after tether")
    atexit.register(flush)
    _configure_from_env()
    return provider


def _resource() -> Resource:
    attrs: dict[str, Any] = {"service.name": os.environ.get("OTEL_SERVICE_NAME") or "tether"}
    attrs["tether.version"] = __version__
    return Resource.create(attrs)  # OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME still apply


def tracer() -> trace.Tracer:
    """tether's tracer (from the replay-safe provider)."""
    found = _state.tracer
    if found is None:
        found = _state.tracer = tracer_provider().get_tracer(TRACER_NAME)
    return found  # type: ignore[no-any-return]


def _configure_from_env() -> None:
    store = settings.current().trace_store
    if store:
        use_store(store)
    if otlp_configured("TRACES") and not _state.otlp_traces:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        _state.sinks.add(BatchSpanProcessor(OTLPSpanExporter()))
        _state.otlp_traces = True


def otlp_configured(signal: str) -> bool:
    """True when the standard variables ask for OTLP export of `signal` ("TRACES" or "METRICS")."""
    if (os.environ.get("OTEL_SDK_DISABLED") or "").lower() == "true":
        return False
    exporter = os.environ.get(f"OTEL_{signal}_EXPORTER", "").strip().lower()
    if exporter and "otlp" not in exporter:
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))


def use_store(path: Path) -> Path:
    """Keep finished spans in the SQLite store at `path` (as `tether dev` does).

    Also sets the `trace_store` setting, so worker processes started from here (with
    `tether.settings.child_env()`) store too.
    """
    path = Path(path)
    with _lock:
        tracer_provider()
        if _state.store == path.resolve():
            return path
        if _state.store_processor is not None:
            _state.sinks.remove(_state.store_processor)
            _state.store_processor.shutdown()
        processor = BatchSpanProcessor(SqliteSpanExporter(path), schedule_delay_millis=200,
                                       max_export_batch_size=512)
        _state.sinks.add(processor)
        _state.store, _state.store_processor = path.resolve(), processor
    settings.use(trace_store=path)
    return path


def store_path() -> Path | None:
    """The SQLite span store spans go to in this process, if any."""
    return _state.store


@contextmanager
def capture_spans() -> Iterator[InMemorySpanExporter]:
    """Collect the spans finished in this process while the block runs (for tests).

    Example:
        >>> with capture_spans() as spans:
        ...     await client.run(flow, x)
        >>> [s.name for s in spans.get_finished_spans()]
    """
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    tracer_provider()
    _state.sinks.add(processor)
    try:
        yield exporter
    finally:
        _state.sinks.remove(processor)


def has_span_sink() -> bool:
    """True when finished spans go somewhere (store, OTLP, a capture)."""
    if _state.provider is None and (settings.current().trace_store or otlp_configured("TRACES")):
        tracer_provider()
    return bool(_state.sinks.processors)


def flush(timeout_millis: int = 5000) -> None:
    """Export what is buffered now (spans and metrics); called at exit and by the CLI."""
    provider = _state.provider
    if provider is not None:
        provider.force_flush(timeout_millis)
    mp = _state.meter_provider
    if mp is not None:
        with suppress(Exception):  # a reader without a backend (the scrape endpoint) may refuse
            mp.force_flush(timeout_millis)


# ---- content capture ------------------------------------------------------------------


def set_capture_content(on: bool | None) -> None:
    """Record prompts and responses on model spans in this process (None: from the environment).

    Sensitive values are replaced by their handles whatever the setting. Also sets the
    `capture_content` setting, so worker processes started from here inherit it.
    """
    _state.capture_content = on
    if on is not None:
        settings.use(capture_content=on)


def capture_content() -> bool:
    """Whether prompts and responses are recorded on model spans here (default: off)."""
    if _state.capture_content is not None:
        return _state.capture_content
    configured = settings.current().capture_content
    if configured is not None:
        return configured
    return bool(env_flag(GENAI_CONTENT_ENV))


# ---- metrics --------------------------------------------------------------------------


def meter_provider() -> MeterProvider:
    """The meter provider tether's instruments use (readers come and go; see `metrics_on`)."""
    with _lock:
        if _state.meter_provider is None:
            _state.meter_provider = MeterProvider(resource=_resource())
            _metric_readers_from_env()
        return _state.meter_provider


def metrics_on() -> bool:
    """True when some metric reader (scrape endpoint, OTLP, a capture) is attached."""
    if _state.meter_provider is None:
        meter_provider()
    return bool(_state.readers)


def _metric_readers_from_env() -> None:
    if otlp_configured("METRICS") and not _state.otlp_metrics:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        _add_reader(PeriodicExportingMetricReader(OTLPMetricExporter()))
        _state.otlp_metrics = True


def _add_reader(reader: MetricReader) -> None:
    with _lock:
        meter_provider().add_metric_reader(reader)
        _state.readers.append(reader)


def _remove_reader(reader: MetricReader) -> None:
    with _lock:
        if reader in _state.readers:
            _state.readers.remove(reader)
            meter_provider().remove_metric_reader(reader)


def serve_metrics(port: int, host: str | None = None) -> tuple[str, int]:
    """Serve a Prometheus scrape endpoint (`/metrics`) on `host:port` from this process.

    Args:
        port: TCP port (0 picks a free one).
        host: Interface to bind (default `TETHER_METRICS_HOST`, else 127.0.0.1; use 0.0.0.0
            for a scraper on another machine).

    Returns:
        The address actually bound.

    Raises:
        ConfigError: The port is taken.
    """
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    if not 0 <= port <= 65535:
        raise ConfigError(f"metrics port {port} is out of range (0-65535)")
    host = host or settings.current().metrics_host
    with _lock:
        if _state.metrics_address is not None:
            return _state.metrics_address
        registry = CollectorRegistry()
        try:
            server, _thread = start_http_server(port, addr=host, registry=registry)
        except OSError as exc:
            raise ConfigError(f"cannot serve metrics on {host}:{port}: {exc.strerror}; pick another "
                              "--metrics-port") from None
        _add_reader(PrometheusMetricReader(registry=registry))
        _state.metrics_server = server
        _state.metrics_address = (host, int(server.server_address[1]))
        return _state.metrics_address


@contextmanager
def capture_metrics() -> Iterator[InMemoryMetricReader]:
    """Collect tether's metrics recorded while the block runs (for tests)."""
    reader = InMemoryMetricReader()
    _add_reader(reader)
    try:
        yield reader
    finally:
        _remove_reader(reader)


def telemetry_wanted(setting: bool | None) -> bool:
    """Whether a client or worker should trace: the explicit setting, else `TETHER_TELEMETRY`,
    else whenever spans or metrics go somewhere."""
    if setting is not None:
        return setting
    flag = settings.current().telemetry
    if flag is not None:
        return flag
    if (os.environ.get("OTEL_SDK_DISABLED") or "").lower() == "true":
        return False
    return has_span_sink() or metrics_on()
