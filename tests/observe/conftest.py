"""Fixtures for the observability tests: a traced client, captured spans and metrics, helpers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tether
from tether import observe, settings
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.testing import unique_queue

REPO = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def traced(tether_server: DevServer) -> AsyncIterator[tether.Client]:
    """A client (and, through it, workers) with telemetry on, on a queue of its own."""
    conn = Connection(address=tether_server.address, task_queue=unique_queue("obs"), telemetry=True)
    yield tether.Client(await conn.connect(), conn)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans finished in this process during the test."""
    with observe.capture_spans() as exporter:
        yield exporter


@pytest.fixture
def metrics() -> Iterator[InMemoryMetricReader]:
    """tether's metrics recorded in this process during the test."""
    with observe.capture_metrics() as reader:
        yield reader


@pytest.fixture
def capture_on() -> Iterator[None]:
    """Content capture on for the test (process-wide), restored afterwards."""
    before = observe._setup._state.capture_content
    with settings.override():  # set_capture_content also sets the capture_content setting
        observe.set_capture_content(True)
        yield
    observe._setup._state.capture_content = before


def of_run(exporter: InMemorySpanExporter, run_id: str) -> list[ReadableSpan]:
    """The finished spans of one run's trace, oldest first."""
    finished = list(exporter.get_finished_spans())
    runs = [s for s in finished if attrs(s).get("tether.run_id") == run_id]
    assert runs, f"no span of run {run_id}"
    trace_ids = {s.context.trace_id for s in runs}
    assert len(trace_ids) == 1, "a run's spans are in one trace"
    return sorted((s for s in finished if s.context.trace_id in trace_ids), key=lambda s: s.start_time or 0)


def attrs(item: ReadableSpan | Event) -> dict[str, Any]:
    """The attributes of a span or span event (none: empty), typed for assertions."""
    return dict(item.attributes or {})


def named(items: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    """The spans called `name`."""
    return [s for s in items if s.name == name]


def children(items: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    """The spans whose parent is `parent`, oldest first."""
    return [s for s in items if s.parent is not None and s.parent.span_id == parent.context.span_id]


def metric_points(reader: InMemoryMetricReader, name: str) -> list[tuple[dict[str, object], float]]:
    """(attributes, value) of every point of metric `name` (counters: the sum, histograms: the count)."""
    data = reader.get_metrics_data()
    out: list[tuple[dict[str, object], float]] = []
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name != name:
                    continue
                for p in m.data.data_points:
                    value = p.value if isinstance(p, NumberDataPoint) else p.count
                    out.append((dict(p.attributes or {}), float(value)))
    return out


def tether_cmd(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the `tether` command through its real entry point."""
    return subprocess.run([sys.executable, "-m", "tether", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)
