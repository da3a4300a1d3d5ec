"""Provider code end to end: real workflow runs on the dev server, calling a real HTTP server
on loopback that speaks the OpenAI-compatible API and answers from a script."""

from __future__ import annotations

from typing import Any

import pytest

import tether
from tests.apps import llm_flows as app
from tether import llm
from tether.engine.history import StepRecord
from tether.testing import ChatServer, chat_error, chat_reply

VALID: dict[str, Any] = {"supplier": "ACME GmbH", "total": 339.15, "currency": "EUR"}


def model_steps(detail: tether.RunDetail) -> list[StepRecord]:
    return [s for s in detail.steps if s.name == llm.STEP_NAME]


async def test_valid_json_with_native_schema_usage_and_cost(tether_client: tether.Client,
                                                            chat_server: ChatServer) -> None:
    model = chat_server.model("invoice-model")
    llm.set_price(model, input=3.0, output=15.0)
    chat_server.script(chat_reply(VALID, usage=(1000, 200)))
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.llm_extract, app.Ask(model=model, prompt="Invoice text"))
        out = await run.result()
        detail = await run.describe()
    assert out.fields == app.InvoiceFields(**VALID)
    assert (out.usage.calls, out.usage.input_tokens, out.usage.output_tokens) == (1, 1000, 200)
    assert out.usage.cost == pytest.approx((1000 * 3.0 + 200 * 15.0) / 1e6)
    (request,) = chat_server.requests
    fmt = request.body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "InvoiceFields"
    assert set(fmt["json_schema"]["schema"]["required"]) == {"supplier", "total", "currency"}
    assert request.body["temperature"] == 0.0
    (step,) = model_steps(detail)
    assert (step.status, step.attempts, step.result["cost"]) == ("completed", 1, out.usage.cost)


async def test_malformed_json_then_valid_is_repaired(tether_client: tether.Client, chat_server: ChatServer) -> None:
    chat_server.script(chat_reply('{"supplier": "ACME GmbH", "total": 339.15,'), chat_reply(VALID))
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.llm_extract, app.Ask(model=chat_server.model(), prompt="x"))
        out = await run.result()
        detail = await run.describe()
    assert out.fields.total == 339.15 and out.usage.calls == 2
    second = chat_server.requests[1]
    sent_back = second.body["messages"]
    assert sent_back[-2] == {"role": "assistant", "content": '{"supplier": "ACME GmbH", "total": 339.15,'}
    assert "Invalid JSON" in sent_back[-1]["content"]
    assert [s.input[0]["repair"] for s in model_steps(detail)] == [0, 1]


async def test_schema_violations_exhaust_repairs_and_fail_with_errors(tether_client: tether.Client,
                                                                      chat_server: ChatServer) -> None:
    wrong = chat_reply({"supplier": "ACME GmbH", "total": "a lot"})
    chat_server.script(wrong, wrong, wrong)
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.llm_extract, app.Ask(model=chat_server.model(), prompt="x", repairs=2))
        with pytest.raises(tether.RunFailed) as info:
            await run.result()
        detail = await run.describe()
    assert info.value.error_type == "ModelOutputInvalid"
    assert "total: Input should be a valid number" in str(info.value) and "(and 1 more)" in str(info.value)
    assert len(chat_server.requests) == 3
    assert "currency: Field required" in chat_server.requests[2].body["messages"][-1]["content"]
    assert [s.status for s in model_steps(detail)] == ["completed"] * 3


async def test_429_waits_for_retry_after(tether_client: tether.Client, chat_server: ChatServer) -> None:
    chat_server.script(chat_error(429, "Rate limit reached", retry_after=3), chat_reply(VALID))
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.llm_extract, app.Ask(model=chat_server.model(), prompt="x"))
        await run.result()
        detail = await run.describe()
    first, second = chat_server.requests
    # the step's own backoff is 100ms: a 3s wait comes from the provider's Retry-After
    assert second.at - first.at >= 2.9
    (step,) = model_steps(detail)
    assert step.attempts == 2 and "HTTP 429: Rate limit reached" in (step.last_failure or "")


async def test_500_is_retried_with_backoff(tether_client: tether.Client, chat_server: ChatServer) -> None:
    chat_server.script(chat_error(500, "upstream exploded"), chat_error(502), chat_reply(VALID))
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.llm_extract, app.Ask(model=chat_server.model(), prompt="x"))
        await run.result()
        detail = await run.describe()
    assert len(chat_server.requests) == 3
    (step,) = model_steps(detail)
    assert step.attempts == 3 and step.status == "completed"


async def test_401_fails_at_once_with_the_providers_message(tether_client: tether.Client,
                                                           chat_server: ChatServer) -> None:
    chat_server.script(chat_error(401, "Incorrect API key provided: sk-...abcd"))
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.llm_chat_flow, app.Ask(model=chat_server.model(), prompt="x"))
        with pytest.raises(tether.RunFailed) as info:
            await run.result()
        detail = await run.describe()
    assert info.value.error_type == "ModelError"
    assert "HTTP 401: Incorrect API key provided: sk-...abcd (not retried)" in str(info.value)
    assert len(chat_server.requests) == 1
    (step,) = model_steps(detail)
    assert (step.attempts, step.status) == (1, "failed")


async def test_chat_falls_back_after_a_refusal(tether_client: tether.Client, chat_server: ChatServer) -> None:
    chat_server.script(chat_error(403, "model not enabled for this project"))
    async with tether.Worker(tether_client):
        run = await tether_client.start(app.llm_chat_flow, app.Ask(model=chat_server.model(), prompt="hello",
                                                                   fallbacks=[app.ECHO.model]))
        out = await run.result()
        detail = await run.describe()
    assert out.text == "echo: hello"
    primary, fallback = model_steps(detail)
    assert primary.status == "failed" and fallback.status == "completed"
    assert fallback.input[0]["fallback"] == 1 and "HTTP 403" in fallback.input[0]["reason"]
    assert out.usage.by_model == {app.ECHO.model: out.usage.by_model[app.ECHO.model]}


async def test_run_default_model_and_usage_are_per_run(tether_client: tether.Client, chat_server: ChatServer) -> None:
    chat_server.script(chat_reply("one"), chat_reply("two"))
    async with tether.Worker(tether_client):
        assert await tether_client.run(app.llm_default_model, "hi") == "echo: hi"
        first, second = await tether.gather(
            tether_client.run(app.llm_chat_flow, app.Ask(model=chat_server.model(), prompt="a")),
            tether_client.run(app.llm_chat_flow, app.Ask(model=chat_server.model(), prompt="b")))
    assert {first.text, second.text} == {"one", "two"}
    assert first.usage.calls == second.usage.calls == 1  # each run counts only its own calls
    assert llm.default_model() != "scripted:llm-echo"  # the run's llm.configure() stayed in that run


async def test_model_calls_carry_an_idempotency_key_stable_across_retries(tether_client: tether.Client,
                                                                          chat_server: ChatServer) -> None:
    model = chat_server.model("keyed-model")
    chat_server.script(chat_error(503, "overloaded"), chat_reply("first"), chat_reply("again"))
    async with tether.Worker(tether_client):
        await tether_client.run(app.llm_chat_flow, app.Ask(model=model, prompt="Hello"))
        await tether_client.run(app.llm_chat_flow, app.Ask(model=model, prompt="Hello"))
    keys = [r.headers.get("idempotency-key") for r in chat_server.requests]
    assert len(keys) == 3 and all(k and k.startswith("tether-") for k in keys), keys
    assert keys[0] == keys[1], "the retry of a model step sends the same key (billed once)"
    assert keys[2] != keys[0], "another run's call has another key"
