"""The provider path: an agent on a real OpenAI-compatible HTTP server on loopback, with native
tool calls (the tools, the tool results and the final answer as the API's own tool messages)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import tether
from tests.agent.conftest import RunLog
from tests.apps import agent_flows as app
from tether.testing import ChatServer, Reply


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    with ChatServer() as server:
        yield server


async def test_native_tool_calls_over_http(tether_client: tether.Client, chat_server: ChatServer,
                                           run_log: RunLog) -> None:
    chat_server.script(
        Reply(tool_calls=[{"id": "call_a1", "name": "agent_refund", "arguments": {"order_id": "o-5", "amount": 3}}]),
        Reply(tool_calls=[{"id": "call_a2", "name": "final_result",
                           "arguments": {"summary": "refunded o-5", "refunded": True}}]))
    async with tether.Worker(tether_client):
        result = await asyncio.wait_for(tether_client.run(app.agent_native, chat_server.model("gpt-test")), 60)
    assert result.output == app.Resolution(summary="refunded o-5", refunded=True)
    assert result.turns == 2 and result.usage.calls == 2 and result.usage.input_tokens == 24

    first, second = (r.body for r in chat_server.requests)
    offered = {t["function"]["name"]: t["function"] for t in first["tools"]}
    assert set(offered) == {"agent_refund", "final_result"}
    assert offered["agent_refund"]["description"] == "Refund an order."
    assert offered["agent_refund"]["parameters"]["required"] == ["order_id", "amount"]
    assert offered["final_result"]["parameters"]["required"] == ["summary", "refunded"]
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][2]["tool_calls"][0]["id"] == "call_a1"
    tool_msg = second["messages"][3]
    assert (tool_msg["tool_call_id"], tool_msg["content"]) == ("call_a1", "refunded 3.00 on o-5")
    assert len(run_log.entries("tool", name="agent_refund")) == 1
