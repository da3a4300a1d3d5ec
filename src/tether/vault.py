"""The vault: where a zone keeps its sensitive values. Runs on the zone's workers only.

The default is a SQLite file (`TETHER_VAULT`, else `<state dir>/vault.db`) on the worker's
machine; anything with `put`/`get` can replace it (`use_vault`). Values are stored as JSON.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from tether import settings
from tether.errors import ConfigError


class Vault(Protocol):
    """Storage for sensitive values, keyed by zone and id."""

    def put(self, zone: str, id: str, label: str, value: Any) -> None:
        """Store a JSON-serialisable `value`."""
        ...

    def get(self, zone: str, id: str) -> Any:
        """The stored value; raise `KeyError` when the vault does not hold it."""
        ...


class SqliteVault:
    """A vault in one SQLite file (WAL mode; safe for several worker processes on one machine).

    Args:
        path: The database file; created with its folder on first use.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._ready = False
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if not self.path.exists():  # plaintext values: readable by the worker's user only
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
                db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            except (OSError, sqlite3.Error) as exc:
                raise ConfigError(f"cannot open the vault {str(self.path)!r}: {exc}; set TETHER_VAULT "
                                  "to a writable file") from None
            self._local.db = db
            with self._lock:
                if not self._ready:
                    db.execute("PRAGMA journal_mode=wal")
                    db.execute("CREATE TABLE IF NOT EXISTS sensitive (zone TEXT NOT NULL, id TEXT NOT NULL, "
                               "label TEXT NOT NULL, value TEXT NOT NULL, created REAL NOT NULL, "
                               "PRIMARY KEY (zone, id))")
                    self._ready = True
        return db

    def put(self, zone: str, id: str, label: str, value: Any) -> None:
        """Store `value` as JSON."""
        self._db().execute("INSERT OR REPLACE INTO sensitive VALUES (?, ?, ?, ?, ?)",
                           (zone, id, label, json.dumps(value, ensure_ascii=False), time.time()))

    def get(self, zone: str, id: str) -> Any:
        """The value stored under (zone, id)."""
        row = self._db().execute("SELECT value FROM sensitive WHERE zone = ? AND id = ?", (zone, id)).fetchone()
        if row is None:
            raise KeyError(id)
        return json.loads(row[0])

    def __repr__(self) -> str:
        return f"SqliteVault({str(self.path)!r})"


_configured: Vault | None = None
_default: SqliteVault | None = None


def use_vault(vault: Vault | None) -> None:
    """Use `vault` for every zone served by this process (None: back to the SQLite default)."""
    global _configured
    _configured = vault


def current_vault() -> Vault:
    """The vault of this process: the one set with `use_vault`, else the SQLite default."""
    global _default
    if _configured is not None:
        return _configured
    configured = settings.current()
    path = configured.vault or configured.state_dir / "vault.db"
    if _default is None or _default.path != path:
        _default = SqliteVault(path)
    return _default


__all__ = ["SqliteVault", "Vault", "current_vault", "use_vault"]
