"""Connection settings for clusters: arguments, TETHER_* variables, TLS and API keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.engine.connection import Connection
from tether.errors import ConfigError


def test_environment_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_ADDRESS", "temporal.internal:7233")
    monkeypatch.setenv("TETHER_NAMESPACE", "payments")
    monkeypatch.setenv("TETHER_API_KEY", "k-123")
    conn = Connection.from_env(namespace="claims")
    assert (conn.address, conn.namespace, conn.api_key) == ("temporal.internal:7233", "claims", "k-123")
    assert conn.explicit
    assert conn.tls() is True, "an API key implies TLS (Temporal Cloud)"


def test_default_is_local_and_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ADDRESS", "NAMESPACE", "API_KEY", "TLS_CERT", "TLS_KEY", "TLS_CA", "TASK_QUEUE"):
        monkeypatch.delenv(f"TETHER_{var}", raising=False)
    conn = Connection.from_env()
    assert (conn.address, conn.namespace, conn.task_queue) == ("127.0.0.1:7233", "default", "tether")
    assert not conn.explicit and conn.tls() is False


def test_mtls_reads_files(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_bytes(b"CERT")
    (tmp_path / "k.pem").write_bytes(b"KEY")
    tls = Connection(tls_cert=str(tmp_path / "c.pem"), tls_key=str(tmp_path / "k.pem")).tls()
    assert not isinstance(tls, bool)
    assert (tls.client_cert, tls.client_private_key) == (b"CERT", b"KEY")


def test_tls_mistakes_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="both a client certificate and its key"):
        Connection(tls_cert=str(tmp_path / "c.pem")).tls()
    with pytest.raises(ConfigError, match="cannot read the TLS client certificate"):
        Connection(tls_cert=str(tmp_path / "missing.pem"), tls_key=str(tmp_path / "k")).tls()
