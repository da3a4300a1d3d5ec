"""`tether.settings`: every TETHER_* variable read in one place, overridden without touching os.environ."""

from __future__ import annotations

import os
import re
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest

from tether import settings
from tether.errors import UsageError
from tether.settings import Settings

SRC = Path(__file__).resolve().parents[2] / "src" / "tether"

BAD = {  # one malformed value per setting that can be malformed
    "TETHER_ALLOW_PLAINTEXT": "perhaps", "TETHER_PAYLOAD_THRESHOLD": "lots", "TETHER_HEARTBEAT_TIMEOUT": "soon",
    "TETHER_STREAM": "sometimes", "TETHER_STREAM_MAX": "many",
    "TETHER_GRACE": "-5s", "TETHER_TRACE_RETENTION": "forever", "TETHER_CAPTURE_CONTENT": "maybe",
    "TETHER_TELEMETRY": "2", "TETHER_LOG_LEVEL": "chatty", "TETHER_DEBUG": "very",
    "TETHER_MODEL_SUBSTITUTES": "{nope", "TETHER_BLOCK_CLOUD_MODELS": "please", "TETHER_LOCAL_CTX": "0",
    "TETHER_LOCAL_THREADS": "many", "TETHER_ZONE_DESTINATIONS": "vault",
}


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.address is None and s.keys is None and not s.allow_plaintext and not s.debug
    assert s.state_dir == Path(".tether") and s.heartbeat_timeout == timedelta(seconds=10)
    assert s.trace_retention == timedelta(days=14) and s.grace == timedelta(seconds=30)
    assert s.log_level == "INFO" and s.metrics_host == "127.0.0.1" and s.local_ctx == 4096
    assert s.model_substitutes == () and s.zone_destinations == () and s.capture_content is None
    assert s.to_env() == {}


def test_values_are_typed_and_empty_means_unset() -> None:
    s = Settings.from_env({"TETHER_PAYLOAD_THRESHOLD": "200", "TETHER_HEARTBEAT_TIMEOUT": "2s",
                           "TETHER_CAPTURE_CONTENT": "yes", "TETHER_LOG_LEVEL": "debug", "TETHER_VAULT": "v.db",
                           "TETHER_MODEL_SUBSTITUTES": '{"mistral:*": "scripted:fake"}',
                           "TETHER_ZONE_DESTINATIONS": "vault=mcp:records, vault=local:", "TETHER_ADDRESS": ""})
    assert s.payload_threshold == 200 and s.heartbeat_timeout == timedelta(seconds=2)
    assert s.capture_content is True and s.log_level == "DEBUG" and s.vault == Path("v.db")
    assert s.model_substitutes == (("mistral:*", "scripted:fake"),)
    assert s.zone_destinations == (("mcp:records", "vault"), ("local:", "vault"))
    assert s.address is None


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_is_one_line_naming_the_variable(name: str) -> None:
    with pytest.raises(UsageError) as caught:
        Settings.from_env({name: BAD[name]})
    message = str(caught.value)
    assert name in message and "\n" not in message


def test_every_setting_that_can_be_malformed_is_checked_above() -> None:
    free_text = {"address", "namespace", "task_queue", "tls_cert", "tls_key", "tls_ca", "api_key", "keys",
                 "key_file", "state_dir", "payload_store", "vault", "trace_store", "metrics_host", "model",
                 "api_token", "api_token_file", "https_cert", "https_key", "temporal_ui",
                 "build_id", "deployment", "model_cache"}
    assert {settings.variable(f.name) for f in fields(Settings) if f.name not in free_text} == set(BAD)


def test_secrets_stay_out_of_repr() -> None:
    s = Settings.from_env({"TETHER_KEYS": "k1:c2VjcmV0c2VjcmV0", "TETHER_API_TOKEN": "tok-123456789"})
    assert "c2VjcmV0" not in repr(s) and "tok-123456789" not in repr(s)


def test_to_env_round_trips() -> None:
    env = {"TETHER_ADDRESS": "temporal.internal:7233", "TETHER_KEYS": "k1:abc", "TETHER_ALLOW_PLAINTEXT": "true",
           "TETHER_PAYLOAD_THRESHOLD": "4096", "TETHER_HEARTBEAT_TIMEOUT": "1m30s", "TETHER_TELEMETRY": "off",
           "TETHER_MODEL_SUBSTITUTES": '{"*": "scripted:x"}', "TETHER_ZONE_DESTINATIONS": "vault=mcp:crm",
           "TETHER_STATE_DIR": "/srv/state", "TETHER_LOCAL_THREADS": "3", "TETHER_LOG_LEVEL": "warning"}
    s = Settings.from_env(env)
    assert Settings.from_env(s.to_env()) == s
    assert s.to_env()["TETHER_HEARTBEAT_TIMEOUT"] == "90s" and s.to_env()["TETHER_TELEMETRY"] == "0"


def test_current_notices_a_changed_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_HEARTBEAT_TIMEOUT", "3s")
    assert settings.current().heartbeat_timeout == timedelta(seconds=3)
    first = settings.current()
    assert settings.current() is first  # cached while nothing changes
    monkeypatch.setenv("TETHER_HEARTBEAT_TIMEOUT", "4s")
    assert settings.current().heartbeat_timeout == timedelta(seconds=4)
    monkeypatch.delenv("TETHER_HEARTBEAT_TIMEOUT")
    assert settings.current().heartbeat_timeout == timedelta(seconds=10)


def test_overrides_do_not_touch_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_MODEL", raising=False)
    before = dict(os.environ)
    with settings.override(model="scripted:fake", heartbeat_timeout="5s", trace_store="t.db") as s:
        assert s.model == "scripted:fake" and settings.current().heartbeat_timeout == timedelta(seconds=5)
        assert settings.current().trace_store == Path("t.db")
        settings.use(debug=True)  # undone with the block too
        assert settings.current().debug
        assert dict(os.environ) == before
    assert settings.current().model is None and not settings.current().debug
    assert dict(os.environ) == before


def test_an_override_wins_over_the_environment_and_none_restores_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_MODEL", "scripted:env")
    with settings.override(model="scripted:override"):
        assert settings.current().model == "scripted:override"
        monkeypatch.setenv("TETHER_NAMESPACE", "payments")  # the environment still counts for the rest
        assert settings.current().namespace == "payments"
        settings.use(model=None)
        assert settings.current().model is None
    assert settings.current().model == "scripted:env"


def test_override_refuses_unknown_settings_and_bad_text() -> None:
    with pytest.raises(UsageError, match="no setting named 'adress'"), settings.override(adress="x"):
        pass
    with pytest.raises(UsageError, match="TETHER_HEARTBEAT_TIMEOUT"), settings.override(heartbeat_timeout="soon"):
        pass


def test_child_env_carries_overrides_and_drops_what_was_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_KEY_FILE", "parent.json")
    monkeypatch.setenv("TETHER_FAST_LANE", "keep")  # not a setting: passed through
    with settings.override(key_file=None, allow_plaintext=True, trace_store="spans.db"):
        env = settings.child_env({"PATH": "/bin", "TETHER_KEY_FILE": "parent.json", "TETHER_FAST_LANE": "keep"})
    assert env["PATH"] == "/bin" and env["TETHER_FAST_LANE"] == "keep"
    assert env["TETHER_ALLOW_PLAINTEXT"] == "1" and env["TETHER_TRACE_STORE"] == "spans.db"
    assert "TETHER_KEY_FILE" not in env
    assert env["TETHER_BLOCK_CLOUD_MODELS"] == "1"  # the test suite's cloud guard reaches child processes


def test_the_module_table_lists_every_setting() -> None:
    doc = settings.__doc__ or ""
    listed = re.findall(r"^\| `(TETHER_[A-Z_]+)` \|", doc, re.M)
    assert listed == [settings.variable(f.name) for f in fields(Settings)]


def test_the_settings_module_stays_in_the_core_layer() -> None:
    imports = re.findall(r"^\s*(?:from|import) ([\w.]+)", (SRC / "settings.py").read_text(), re.M)
    tether_imports = {m for m in imports if m.split(".")[0] == "tether"}
    assert tether_imports <= {"tether.errors", "tether.durations"}, tether_imports
    assert not any(m.split(".")[0] in ("temporalio", "typer", "opentelemetry", "pydantic") for m in imports)


_CONSTANT = re.compile(r"^(\w+)\s*=\s*\"TETHER_", re.M)  # e.g. STORE_ENV = "TETHER_TRACE_STORE"
_WRITE = re.compile(r"os\.environ\[[^\]]+\]\s*=(?!=)|os\.environ\.(?:setdefault|update|pop|popitem|clear)\b"
                    r"|os\.(?:putenv|unsetenv)\b")
_READ = re.compile(r"os\.(?:environ\.get\(|environ\[|getenv\()\s*([^,)\]]+)")


def test_no_module_but_settings_reads_or_writes_a_tether_variable() -> None:
    """Every TETHER_* variable goes through tether.settings; this keeps it so."""
    files = [p for p in SRC.rglob("*.py") if p != SRC / "settings.py"]
    constants = {name for p in files for name in _CONSTANT.findall(p.read_text())}
    offending = []
    for path in files:
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            reads = [m.group(1).strip() for m in _READ.finditer(line)]
            if _WRITE.search(line) or any("TETHER_" in r or r in constants for r in reads):
                offending.append(f"{path.relative_to(SRC)}:{lineno}: {line.strip()}")
    assert not offending, "use tether.settings instead:\n" + "\n".join(offending)


def test_the_check_above_catches_both_kinds() -> None:
    lines = ['os.environ["TETHER_DEBUG"] = "1"', 'os.environ.setdefault("X", "1")',
             'raw = os.environ.get("TETHER_VAULT")', "store = os.environ.get(STORE_ENV)"]
    assert [bool(_WRITE.search(x)) for x in lines] == [True, True, False, False]
    assert [m.group(1) for x in lines[2:] for m in _READ.finditer(x)] == ['"TETHER_VAULT"', "STORE_ENV"]
