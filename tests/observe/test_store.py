"""The local span store on its own: writing, reading back, deduplication, retention, bad settings."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tether.errors import ConfigError, UsageError
from tether.observe import _stats
from tether.observe._store import SpanStore, SqliteSpanExporter


def _provider(path: Path, also: InMemorySpanExporter | None = None) -> tuple[TracerProvider, SqliteSpanExporter]:
    exporter = SqliteSpanExporter(path)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    if also is not None:
        provider.add_span_processor(SimpleSpanProcessor(also))
    return provider, exporter


def test_spans_round_trip_with_events_and_are_stored_once(tmp_path: Path) -> None:
    memory = InMemorySpanExporter()
    provider, exporter = _provider(tmp_path / "t.db", memory)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("run wf", attributes={"tether.run_id": "r1", "tether.workflow": "wf"}) as run:
        run.add_event("tether.note", {"tether.note.message": "why"})
        with tracer.start_as_current_span("step s", attributes={"tether.run_id": "r1"}):
            pass
    assert exporter.export(memory.get_finished_spans()).name == "SUCCESS"  # exported again (a replay)
    (got_run, got_step) = SpanStore(tmp_path / "t.db").run_spans("r1")
    assert got_run.name == "run wf" and got_step.parent_id == got_run.span_id
    assert got_run.events[0].name == "tether.note" and got_run.events[0].attributes == {"tether.note.message": "why"}
    assert got_run.attr("tether.workflow") == "wf" and got_run.end_ns >= got_run.start_ns


def test_retention_drops_old_spans_when_the_store_opens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    provider, exporter = _provider(tmp_path / "t.db")
    old = time.time_ns() - 3 * 86_400 * 10**9
    provider.get_tracer("t").start_span("run old", attributes={"tether.run_id": "old"}, start_time=old).end()
    provider.get_tracer("t").start_span("run new", attributes={"tether.run_id": "new"}).end()
    exporter.shutdown()
    monkeypatch.setenv("TETHER_TRACE_RETENTION", "2d")
    provider2, _ = _provider(tmp_path / "t.db")
    provider2.get_tracer("t").start_span("run newer", attributes={"tether.run_id": "newer"}).end()
    store = SpanStore(tmp_path / "t.db")
    assert store.run_spans("old") == [] and store.run_spans("new") and store.run_spans("newer")


def test_bad_retention_is_refused_up_front(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_TRACE_RETENTION", "forever")
    with pytest.raises(UsageError, match="TETHER_TRACE_RETENTION"):
        SqliteSpanExporter(tmp_path / "t.db")


def test_percentiles_are_nearest_rank() -> None:
    values = [0.1, 0.2, 0.3, 0.4, 1.0]
    assert _stats.percentile(values, 50) == 0.3 and _stats.percentile(values, 95) == 1.0
    assert _stats.percentile([], 50) == 0.0


def test_a_store_whose_schema_is_not_written_yet_reads_as_empty(tmp_path: Path) -> None:
    """The first exporter creates the file a moment before its table: readers (Studio's
    metrics, `tether stats`) see an empty store then, not an error."""
    import sqlite3

    path = tmp_path / "traces.db"
    sqlite3.connect(str(path)).close()  # the file exists, the schema does not
    store = SpanStore(path)
    assert store.exists
    assert store.since(0) == [] and store.run_spans("r") == [] and store.run_ids_like("r") == []
    path.write_bytes(b"not a database at all, truly")
    with pytest.raises(ConfigError, match="cannot read the span store"):
        store.since(0)
