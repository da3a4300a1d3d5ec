"""Model strings, readiness checks, prices and the structured-output loop, without a server.

Outside a workflow a model call runs directly, so repair and fallback logic is exercised
here with scripted models; the same code runs as durable steps in the integration tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import BaseModel

import tether
from tether import llm
from tether.llm._json import json_text
from tether.testing import ChatServer, ScriptedModel, chat_reply


class Total(BaseModel):
    total: float
    currency: str


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "Traceback" not in text
    return text


# ---- model strings -------------------------------------------------------------------


@pytest.mark.parametrize("text, provider, name, kind", [
    ("mistral:mistral-small-latest", "mistral", "mistral-small-latest", "cloud"),
    ("openai:gpt-4.1-mini", "openai", "gpt-4.1-mini", "cloud"),
    ("anthropic:claude-haiku-4-5", "anthropic", "claude-haiku-4-5", "cloud"),
    ("ollama:llama3.2", "ollama", "llama3.2", "endpoint"),
    ("openai-compatible:qwen2.5@http://127.0.0.1:8000/v1", "openai-compatible", "qwen2.5", "endpoint"),
    ("local:smollm2", "local", "smollm2", "local"),
    ("local:/models/x.gguf", "local", "/models/x.gguf", "local"),
    ("scripted:flaky", "scripted", "flaky", "scripted"),
])
def test_parse_model(text: str, provider: str, name: str, kind: str) -> None:
    spec = llm.parse_model(text)
    assert (spec.provider, spec.name, spec.kind) == (provider, name, kind)


def test_openai_compatible_base_url() -> None:
    spec = llm.parse_model("openai-compatible:org/model@v2@https://gpu.internal:8000/v1/")
    assert (spec.name, spec.base_url) == ("org/model@v2", "https://gpu.internal:8000/v1")


def test_unknown_provider_is_one_clear_line() -> None:
    with pytest.raises(tether.UsageError) as info:
        llm.parse_model("gemini:flash")
    text = one_line(info.value)
    assert "unknown model provider 'gemini'" in text and "mistral" in text and "register_endpoint" in text


@pytest.mark.parametrize("bad", ["gpt-4", "", ":x", "openai:", " openai:gpt-4", "openai-compatible:m",
                                 "openai-compatible:m@ftp://x", 42])
def test_malformed_model_string(bad: object) -> None:
    with pytest.raises(tether.UsageError) as info:
        llm.parse_model(bad)
    assert "provider:model" in one_line(info.value) or "openai-compatible:MODEL@http" in str(info.value)


async def test_bad_model_is_rejected_before_any_call() -> None:
    model = ScriptedModel("never-called", ["{}"])
    with pytest.raises(tether.UsageError):
        await llm.chat("hi", model=model.model, fallbacks=["nope:x"])
    assert model.calls == []


def test_register_endpoint() -> None:
    llm.register_endpoint("vllm-test", "http://127.0.0.1:9/v1", api_key_env="VLLM_TEST_KEY")
    spec = llm.parse_model("vllm-test:Qwen/Qwen2.5-7B")
    assert (spec.kind, spec.base_url, spec.key_env) == ("endpoint", "http://127.0.0.1:9/v1", "VLLM_TEST_KEY")
    with pytest.raises(tether.UsageError, match="built-in provider"):
        llm.register_endpoint("openai", "http://127.0.0.1:9/v1")
    with pytest.raises(tether.UsageError, match="not an http"):
        llm.register_endpoint("x", "127.0.0.1:9")


# ---- readiness: keys, extras, the cloud guard -----------------------------------------


async def test_missing_api_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    with pytest.raises(tether.ConfigError) as info:
        await llm.chat("hi", model="mistral:mistral-small-latest")
    text = one_line(info.value)
    assert text.startswith("MISTRAL_API_KEY is not set") and "local:smollm2" in text


async def test_cloud_guard_blocks_real_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(tether.CloudModelBlocked) as info:
        await llm.chat("hi", model="openai:gpt-4.1-mini")
    assert "api.openai.com" in one_line(info.value)
    assert not llm.available("openai:gpt-4.1-mini")
    assert llm.first_available("openai:gpt-4.1-mini", "local:smollm2") == "local:smollm2"


async def test_cloud_guard_allows_loopback() -> None:
    with ChatServer() as server:
        server.script(chat_reply("fine"))
        assert (await llm.chat("hi", model=server.model())).text == "fine"


async def test_missing_local_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as if not installed
    with pytest.raises(tether.ConfigError) as info:
        await llm.chat("hi", model="local:smollm2")
    assert "pip install 'tether[local]'" in one_line(info.value)
    assert not llm.available("local:smollm2")


async def test_missing_local_file() -> None:
    with pytest.raises(tether.ConfigError, match="does not exist"):
        await llm.chat("hi", model="local:/nowhere/model.gguf")


def test_first_available_explains_when_nothing_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(tether.ConfigError) as info:
        llm.first_available("anthropic:claude-haiku-4-5", "scripted:nobody")
    assert "ANTHROPIC_API_KEY" in one_line(info.value) and "nobody" in str(info.value)


# ---- prices ----------------------------------------------------------------------------


def test_prices_bundled_overridden_local_and_unknown() -> None:
    usage = llm.Usage(input_tokens=2_000_000, output_tokens=1_000_000)
    bundled = llm.price_of(llm.parse_model("openai:gpt-4.1-mini"))
    assert bundled is not None and bundled.input > 0 and bundled.output > bundled.input
    llm.set_price("openai:gpt-4.1-mini", input=1.0, output=3.0)
    try:
        assert llm.price_of(llm.parse_model("openai:gpt-4.1-mini")).cost(usage) == 5.0  # type: ignore[union-attr]
    finally:
        llm.set_price("openai:gpt-4.1-mini", input=bundled.input, output=bundled.output)
    assert llm.price_of(llm.parse_model("local:smollm2")) == llm.Price(0.0, 0.0)
    assert llm.price_of(llm.parse_model("scripted:x")) is None
    with pytest.raises(tether.UsageError):
        llm.set_price("openai:gpt-4.1-mini", input=-1, output=0)


async def test_cost_is_computed_per_call_and_totalled() -> None:
    model = ScriptedModel("priced", ['{"total": 1, "currency": "EUR"}'] * 2)
    llm.set_price(model.model, input=1_000_000.0, output=2_000_000.0)  # $1 per input token
    before = llm.usage()
    reply = await llm.chat("one two three", model=model.model)
    assert reply.usage.input_tokens == 3 and reply.cost == 3 * 1.0 + reply.usage.output_tokens * 2.0
    after = llm.usage()
    assert after.calls == before.calls + 1
    assert after.by_model[model.model].cost == reply.cost


# ---- structured output: validate, repair, fall back -------------------------------------


async def test_repair_sends_the_validation_error_back() -> None:
    model = ScriptedModel("repairable", ['{"total": "lots", "currency": "EUR"}', '{"total": 7.5, "currency": "EUR"}'])
    out = await llm.structured(Total, "the invoice", model=model.model, repairs=1)
    assert out == Total(total=7.5, currency="EUR")
    first, second = model.calls
    assert (first.repair, second.repair) == (0, 1)
    assert first.output_schema == Total.model_json_schema()
    assert "total" in first.messages[0].content  # the schema is in the system prompt
    repair_prompt = second.messages[-1].content
    assert "total: Input should be a valid number" in repair_prompt
    assert second.messages[-2].content == '{"total": "lots", "currency": "EUR"}'
    assert second.reason and "invalid reply" in second.reason


async def test_fallback_after_repairs_then_invalid_carries_raw_and_errors() -> None:
    a = ScriptedModel("always-prose", lambda call: "The total is 12 euros.")
    b = ScriptedModel("wrong-shape", lambda call: {"amount": 12})
    with pytest.raises(tether.ModelOutputInvalid) as info:
        await llm.structured(Total, "x", model=a.model, fallbacks=[b.model], repairs=1)
    err = info.value
    assert (len(a.calls), len(b.calls)) == (2, 2)
    assert err.model == b.model and err.raw == '{"amount": 12}'
    assert err.tried == [a.model, b.model]
    assert "total: Field required" in err.errors and "currency: Field required" in err.errors
    assert "no valid Total" in one_line(err)


async def test_provider_failure_moves_to_fallback() -> None:
    down = ScriptedModel("down", lambda call: tether.ModelError("down: HTTP 503", model="down"))
    ok = ScriptedModel("ok", ['{"total": 1, "currency": "USD"}'])
    assert await llm.structured(Total, "x", model=down.model, fallbacks=[ok.model]) == Total(total=1, currency="USD")
    assert ok.calls[0].fallback == 1 and "HTTP 503" in (ok.calls[0].reason or "")


async def test_all_models_failing_is_a_model_error() -> None:
    down = ScriptedModel("down2", lambda call: tether.ModelError("down2: HTTP 503", model="down2"))
    with pytest.raises(tether.ModelError) as info:
        await llm.chat("x", model=down.model, fallbacks=[down.model])
    assert not isinstance(info.value, tether.ModelOutputInvalid)
    assert "all 2 models failed" in one_line(info.value)


def test_json_text_drops_fences_and_prose() -> None:
    assert json_text('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert json_text('Sure! {"a": {"b": 2}} Hope this helps') == '{"a": {"b": 2}}'
    assert json_text("{broken") == "{broken"


async def test_classify_and_extract() -> None:
    labeler = ScriptedModel("labeler", ['{"label": "maybe"}', '{"label": "invoice"}'])
    assert await llm.classify("Invoice 42", labels=["invoice", "receipt"], model=labeler.model) == "invoice"
    assert "maybe" not in labeler.calls[0].output_schema["properties"]["label"]["enum"]  # type: ignore[index]
    extractor = ScriptedModel("extractor", ['{"total": 3, "currency": "EUR"}'])
    assert await llm.extract(Total, "3 EUR", model=extractor.model) == Total(total=3, currency="EUR")
    with pytest.raises(tether.UsageError):
        await llm.classify("x", labels=["a", "a"], model=labeler.model)


async def test_output_type_must_be_an_object() -> None:
    with pytest.raises(tether.UsageError, match="must be an object"):
        await llm.structured(list[int], "x", model="scripted:labeler")


def test_default_model_and_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TETHER_MODEL", raising=False)
    assert llm.default_model() == "local:smollm2"
    monkeypatch.setenv("TETHER_MODEL", "scripted:env")
    assert llm.default_model() == "scripted:env"
    with pytest.raises(tether.UsageError):
        llm.configure(heartbeat="200ms")
    with pytest.raises(tether.UsageError):
        llm.configure("nope")


def test_public_api_is_pinned() -> None:
    assert sorted(llm.__all__) == sorted([
        "DEFAULT_MODEL", "STEP_NAME", "ChatResult", "Message", "ModelCall", "ModelReply", "ModelSpec",
        "ModelUsage", "Price", "Prompt", "RunUsage", "Usage", "available", "call_model", "chat", "classify",
        "configure", "default_model", "extract", "first_available", "parse_model", "price_of", "rate_limit",
        "register_endpoint", "require", "set_price", "structured", "substitute", "usage"])


async def test_openai_provider_path_against_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    with ChatServer() as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-loopback-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        server.script(chat_reply('{"total": 2.5, "currency": "EUR"}', usage=(1000, 100)))
        out = await llm.structured(Total, "x", model="openai:gpt-4.1-mini")
        before = llm.usage().by_model["openai:gpt-4.1-mini"]
    assert out == Total(total=2.5, currency="EUR")
    (request,) = server.requests
    assert request.headers["authorization"] == "Bearer sk-loopback-test"
    assert request.body["model"] == "gpt-4.1-mini"
    price = llm.price_of(llm.parse_model("openai:gpt-4.1-mini"))
    assert price is not None and before.cost == pytest.approx(price.cost(llm.Usage(input_tokens=1000,
                                                                                   output_tokens=100)))


async def test_any_gguf_file_loads(tmp_path: Path) -> None:
    from tether.llm import _local

    copy = tmp_path / "my-model.gguf"
    copy.symlink_to(_local.model_path(llm.parse_model("local:smollm2")))
    reply = await llm.chat("Say hi.", model=f"local:{copy}", max_tokens=4)
    assert reply.text and reply.usage.output_tokens <= 4
