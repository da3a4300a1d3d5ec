"""Workflows that use real MCP servers (tests/apps/agent_mcp_server.py) as agent tools."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import tether
from tether.llm import ModelCall
from tether.testing import ScriptedModel

SERVER = str(Path(__file__).with_name("agent_mcp_server.py"))
STDIO = [sys.executable, SERVER]


class McpAsk(BaseModel):
    transport: str  # "stdio" or "http"
    url: str = ""
    zone: str | None = None
    command: list[str] = []
    auth_env: str = "MCP_TEST_AUTH"


def toolset(ask: McpAsk) -> tether.tools.MCPToolset:
    if ask.transport == "http":
        return tether.mcp.http(ask.url, headers_from_env={"Authorization": ask.auth_env}, zone=ask.zone,
                               allow=["lookup", "add"], prefix="crm_")
    return tether.mcp.stdio(ask.command or STDIO, zone=ask.zone, env=["AGENT_LOG"], allow=["lookup", "add"],
                            prefix="crm_", startup_timeout="20s")


@tether.workflow
async def agent_mcp_list(ask: McpAsk) -> list[tether.tools.ToolSpec]:
    return [t.spec for t in await toolset(ask).tools()]


def _script(call: ModelCall) -> Any:
    turn = 1 + sum(1 for m in call.messages if m.role == "assistant")
    if turn == 1:
        return {"tool_calls": [{"name": "crm_lookup", "arguments": {"customer_id": "c1"}},
                               {"name": "crm_add", "arguments": {"a": 2, "b": 3}},
                               {"name": "crm_add", "arguments": {"a": "two"}},
                               {"name": "crm_lookup", "arguments": {"customer_id": "nobody"}}]}
    results = [m.content for m in call.messages if m.role == "tool"]
    return {"final": " || ".join(results)}


MCP_MODEL = ScriptedModel("agent-mcp", _script)


@tether.workflow
async def agent_mcp_use(ask: McpAsk) -> tether.AgentResult[str]:
    agent = tether.Agent(MCP_MODEL.model, name="crm-agent", tools=[toolset(ask)], max_turns=3)
    return await agent.run("Tell me about customer c1 and add 2 and 3.")
