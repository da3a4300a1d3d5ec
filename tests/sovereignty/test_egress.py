"""The egress guard and handles on their own (no server): what passes, what is blocked."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

import tether._sensitive
from tether._sensitive import Sensitive, check_egress, declare_destination, mask
from tether.errors import EgressBlocked, UsageError


@pytest.fixture(autouse=True)
def vault_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TETHER_VAULT", str(tmp_path / "vault.db"))
    return tmp_path / "vault.db"


def _vault_handle(label: str = "ssn") -> Sensitive[str]:
    return Sensitive(zone="vault", id="ab" * 16, label=label, preview="***-**-6789")


class Request(BaseModel):
    model: str
    messages: list[dict[str, str]]
    extra: dict[str, object] = {}


def test_mask_keeps_punctuation_and_the_last_digits() -> None:
    assert mask("123-45-6789") == "***-**-6789"
    assert mask("DE89 3704 0044 0532 0130 00", keep=2) == "**** **** **** **** **** 00"


def test_handle_object_to_a_cloud_model_is_blocked() -> None:
    with pytest.raises(EgressBlocked) as info:
        check_egress({"claim": _vault_handle()}, destination="openai:gpt-4.1-mini")
    assert (info.value.label, info.value.zone, info.value.destination) == ("ssn", "vault", "openai:gpt-4.1-mini")
    assert not info.value.retryable


def test_handle_formatted_into_a_prompt_is_blocked() -> None:
    req = Request(model="m", messages=[{"role": "user", "content": f"assess ssn {_vault_handle()} please"}])
    with pytest.raises(EgressBlocked, match="'ssn' from zone 'vault' may not go to mistral:small"):
        check_egress(req, destination="mistral:small")


def test_handle_json_deep_in_tool_arguments_is_blocked() -> None:
    args = {"rows": [{"x": 1}, {"who": _vault_handle("name").model_dump()}]}
    with pytest.raises(EgressBlocked, match="'name'"):
        check_egress(args, destination="tool:crm.update")


def test_previews_and_plain_data_pass() -> None:
    check_egress({"text": f"last digits {_vault_handle().preview}", "n": 3, "obj": object()},
                 destination="openai:gpt-4.1-mini")


def test_local_model_inside_the_zone_may_receive_it() -> None:
    check_egress([_vault_handle()], destination="local:smollm2", zone="vault")
    with pytest.raises(EgressBlocked, match="local:smollm2"):
        check_egress([_vault_handle()], destination="local:smollm2", zone="main")


def test_declared_destination_belongs_to_its_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tether._sensitive, "_declared", [])
    declare_destination("openai-compatible:llama@http://10.0.0.5", zone="vault")
    check_egress(_vault_handle(), destination="openai-compatible:llama@http://10.0.0.5/v1")
    monkeypatch.setenv("TETHER_ZONE_DESTINATIONS", "vault=mcp:records")
    check_egress(_vault_handle(), destination="mcp:records/lookup")
    with pytest.raises(EgressBlocked):
        check_egress(_vault_handle(), destination="openai-compatible:llama@http://203.0.113.9/v1")


def test_text_built_from_a_revealed_value_is_blocked() -> None:
    handle = tether.sensitive("555-12-3456", label="ssn", preview=True)  # outside a worker: zone "local"
    assert handle.zone == "local" and handle.preview == "***-**-3456"
    assert handle.reveal() == "555-12-3456"
    with pytest.raises(EgressBlocked, match="'ssn' from zone 'local'"):
        check_egress([{"role": "user", "content": "the number is 555-12-3456."}], destination="openai:gpt-4o")
    check_egress("the number is 555-12-3456.", destination="local:smollm2")


def test_vault_holds_the_value(vault_file: Path) -> None:
    tether.sensitive({"diagnosis": "acute appendicitis"}, label="diagnosis")
    assert b"acute appendicitis" in vault_file.read_bytes() or b"acute appendicitis" in (
        vault_file.with_name("vault.db-wal").read_bytes())


def test_bad_label_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="label"):
        tether.sensitive("x", label="<bad>")


def test_redact_cuts_seen_values_from_telemetry_text() -> None:
    tether.sensitive("Jane Q. Roe-Example", label="name")
    out = tether._sensitive.redact({"prompt": ["Patient Jane Q. Roe-Example, born 1970", 3]})
    assert out == {"prompt": ["Patient <name withheld>, born 1970", 3]}
    assert tether._sensitive.redact("nothing here") == "nothing here"
