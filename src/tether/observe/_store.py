"""The local span store: finished spans in a SQLite file under `.tether/`, and reading them back.

Written by worker processes (a span exporter on a background thread; several processes
may share one file) and read by `tether trace` and `tether stats`, with no backend.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from tether import settings
from tether._files import private_file
from tether.errors import ConfigError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_id TEXT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    run_id TEXT,
    workflow TEXT,
    service TEXT,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX IF NOT EXISTS spans_by_run ON spans (run_id);
CREATE INDEX IF NOT EXISTS spans_by_start ON spans (start_ns);
"""


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    if create:
        private_file(path)  # spans hold prompts and results: this user only (-wal/-shm follow)
    db = sqlite3.connect(str(path), timeout=10, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 10000")
    if create:
        db.execute("PRAGMA journal_mode = wal")
        db.execute("PRAGMA synchronous = normal")
        db.executescript(_SCHEMA)
    return db


class SqliteSpanExporter(SpanExporter):
    """Writes finished spans to a SQLite file (WAL mode; safe for several processes).

    A span exported twice (same trace and span id) is stored once. Spans older than the
    retention (`TETHER_TRACE_RETENTION`, default 14d) are dropped when the file is opened.

    Args:
        path: The database file; created with its folder on first export.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.retention = settings.current().trace_retention
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _open(self) -> sqlite3.Connection:
        import time

        db = _connect(self.path, create=True)
        oldest = time.time_ns() - int(self.retention.total_seconds() * 1e9)
        with db:
            db.execute("DELETE FROM spans WHERE start_ns < ?", (oldest,))
        return db

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = [_row(s) for s in spans]
        try:
            with self._lock:
                if self._db is None:
                    self._db = self._open()
                with self._db:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        except sqlite3.Error:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _row(span: ReadableSpan) -> tuple[Any, ...]:
    ctx = span.get_span_context()
    assert ctx is not None  # a finished SDK span always has one
    attrs = dict(span.attributes or {})
    parent = span.parent.span_id if span.parent is not None else None
    events = [{"name": e.name, "time_ns": e.timestamp, "attributes": _plain(dict(e.attributes or {}))}
              for e in span.events]
    service = span.resource.attributes.get("service.name") if span.resource else None
    return (
        f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", f"{parent:016x}" if parent else None,
        span.name, span.kind.name.lower(), span.start_time or 0, span.end_time or span.start_time or 0,
        span.status.status_code.name.lower(), span.status.description,
        attrs.get("tether.run_id"), attrs.get("tether.workflow"), service,
        json.dumps(_plain(attrs), ensure_ascii=False), json.dumps(events, ensure_ascii=False),
    )


def _plain(attrs: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()}


# ---- reading ---------------------------------------------------------------------------


@dataclass
class SpanEvent:
    """One event of a stored span (a note, a decision, an exception)."""

    name: str
    time_ns: int
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class StoredSpan:
    """A span as the store keeps it (ids as hex strings, times in ns since the epoch)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str | None
    attributes: dict[str, Any]
    events: list[SpanEvent]

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return max(0, self.end_ns - self.start_ns) / 1e9

    def attr(self, key: str, default: Any = None) -> Any:
        """An attribute, or `default`."""
        return self.attributes.get(key, default)


class SpanStore:
    """Read access to a span store file.

    Args:
        path: The SQLite file (`.tether/traces.db`).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @property
    def exists(self) -> bool:
        """True when the file exists (spans were ever stored here)."""
        return self.path.is_file()

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[StoredSpan]:
        return [_span(r) for r in self._rows(sql, params)]

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        if not self.exists:
            return []
        try:
            db = _connect(self.path, create=False)
            try:
                return db.execute(sql, tuple(params)).fetchall()
            finally:
                db.close()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the first exporter created the file, not yet its schema
                return []
            raise ConfigError(f"cannot read the span store {str(self.path)!r}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"cannot read the span store {str(self.path)!r}: {exc}") from None

    def run_spans(self, run_id: str) -> list[StoredSpan]:
        """Every span of the traces that contain run `run_id`, oldest first."""
        return self._query(
            f"SELECT {_COLUMNS} FROM spans WHERE trace_id IN "
            "(SELECT DISTINCT trace_id FROM spans WHERE run_id = ?) ORDER BY start_ns", [run_id])

    def since(self, start_ns: int) -> list[StoredSpan]:
        """Every span of the traces with a span that started at or after `start_ns`."""
        return self._query(
            f"SELECT {_COLUMNS} FROM spans WHERE trace_id IN "
            "(SELECT DISTINCT trace_id FROM spans WHERE start_ns >= ?) ORDER BY start_ns", [start_ns])

    def run_ids_like(self, prefix: str, limit: int = 5) -> list[str]:
        """Stored run ids starting with `prefix` (for a helpful error)."""
        rows = self._rows("SELECT DISTINCT run_id FROM spans WHERE run_id LIKE ? ORDER BY run_id LIMIT ?",
                          (prefix.replace("%", "") + "%", limit))
        return [r[0] for r in rows]


_COLUMNS = ("trace_id, span_id, parent_id, name, kind, start_ns, end_ns, status, status_message, "
            "attributes, events")


def _span(row: tuple[Any, ...]) -> StoredSpan:
    events = [SpanEvent(e["name"], int(e["time_ns"] or 0), e.get("attributes") or {})
              for e in json.loads(row[10])]
    return StoredSpan(trace_id=row[0], span_id=row[1], parent_id=row[2], name=row[3], kind=row[4],
                      start_ns=int(row[5]), end_ns=int(row[6]), status=row[7], status_message=row[8],
                      attributes=json.loads(row[9]), events=events)
