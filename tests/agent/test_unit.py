"""Server-free tests: tool schemas from steps, results as text, the constrained JSON protocol of
local models, stored conversations, provider mapping, and errors raised at definition time."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel, Field

import tether
from tether._sensitive import Sensitive
from tether.llm import Message, ModelCall, ModelReply, _providers, _tooltext, _transcript
from tether.llm._spec import parse_model
from tether.llm._types import ToolCall, ToolSpec
from tether.testing import ScriptedModel
from tether.tools import StepTool, render_result
from tether.tools._tool import InvalidArguments, parse_docstring


@tether.step(name="unit_find_order")
def find_order(order_id: Annotated[str, Field(pattern=r"^O-[0-9]+$")], include_lines: bool = False) -> dict[str, str]:
    """Find an order by its id.

    Longer explanation the model does not need.

    Args:
        order_id: The order's id, e.g. O-17.
        include_lines: Whether to list the order's lines
            (slower).
    """
    return {"order": order_id}


def test_a_step_is_a_tool_with_schema_and_description() -> None:
    t = StepTool(find_order)
    assert (t.name, t.description) == ("unit_find_order", "Find an order by its id. Longer explanation the "
                                                          "model does not need.")
    props = t.parameters["properties"]
    assert props["order_id"] == {"description": "The order's id, e.g. O-17.", "pattern": "^O-[0-9]+$",
                                 "title": "Order Id", "type": "string"}
    assert props["include_lines"]["description"] == "Whether to list the order's lines (slower)."
    assert t.parameters["required"] == ["order_id"] and t.parameters["additionalProperties"] is False
    assert t.check({"order_id": "O-3"}) == {"order_id": "O-3", "include_lines": False}
    with pytest.raises(InvalidArguments, match="order_id: String should match pattern"):
        t.check({"order_id": "nope"})
    with pytest.raises(InvalidArguments, match="order: Extra inputs are not permitted"):
        t.check({"order_id": "O-3", "order": 1})


def test_docstring_sections() -> None:
    summary, args = parse_docstring("Do it.\n\nArgs:\n    a: First.\n    b (int): Second\n        line.\nReturns:\n"
                                    "    Nothing.")
    assert summary == "Do it." and args == {"a": "First.", "b": "Second line."}


def test_plain_functions_become_steps_and_tool_names_are_cleaned() -> None:
    def unit_ping(host: str) -> str:
        """Ping a host."""
        return f"pong {host}"

    t = tether.tool(unit_ping, name="net.ping", needs_approval=True, approver="ops")
    assert t.name == "net_ping" and t.needs_approval and t.approver == "ops"
    assert "unit_ping" in tether._registry.steps and t("x") == "pong x"


def test_results_as_text_keep_sensitive_values_out() -> None:
    handle: Sensitive[str] = Sensitive(zone="vault", id="abc123", label="ssn", preview="***-**-6789")

    class Found(BaseModel):
        name: str
        ssn: Sensitive[str]

    assert render_result("plain") == "plain"
    assert json.loads(render_result(Found(name="Ada", ssn=handle))) == {
        "name": "Ada", "ssn": "<ssn (sensitive): ***-**-6789>"}
    assert render_result([1, {"a": True}]) == '[1, {"a": true}]'


def test_action_schema_bounds_strings_and_names_real_tools() -> None:
    spec = ToolSpec(name="lookup", description="Look up.", parameters={
        "type": "object", "properties": {"q": {"type": "string"}, "kind": {"$ref": "#/$defs/Kind"}},
        "required": ["q"], "$defs": {"Kind": {"enum": ["a", "b"], "type": "string"}}})
    schema = _tooltext.action_schema([spec], None)
    use_tools, final = schema["anyOf"]
    item = use_tools["properties"]["tool_calls"]["items"]
    assert item["properties"]["name"] == {"const": "lookup"}
    args = item["properties"]["arguments"]
    assert args["properties"]["q"]["maxLength"] == _tooltext.MAX_STRING
    assert args["properties"]["kind"] == {"enum": ["a", "b"], "type": "string"}  # inlined, not capped
    assert use_tools["properties"]["tool_calls"]["maxItems"] == _tooltext.MAX_CALLS
    assert final["properties"]["final"]["type"] == "string"


def test_render_and_parse_the_json_protocol() -> None:
    call = ModelCall(model="local:x.gguf", tools=[ToolSpec(name="lookup", description="Look up.")], messages=[
        Message(role="system", content="Be brief."), Message(role="user", content="hi"),
        Message(role="assistant", content="", tool_calls=[ToolCall(id="call_1", name="lookup", arguments={})]),
        Message(role="tool", content="42", tool_call_id="call_1", name="lookup")])
    sent = _tooltext.render(call)
    assert [m.role for m in sent.messages] == ["system", "user", "assistant", "user"]
    assert sent.messages[0].content.startswith("Be brief.\n\nYou can call these tools:\n- lookup(): Look up.")
    assert json.loads(sent.messages[2].content) == {"tool_calls": [{"name": "lookup", "arguments": {}}]}
    assert sent.messages[3].content == "Result of lookup:\n42"
    assert sent.tools == [] and sent.output_schema is not None

    def reply(text: str) -> ModelReply:
        return _tooltext.parse(ModelReply(model="m", text=text), call)

    calls = reply('{"tool_calls": [{"name": "lookup", "arguments": {"q": 1}}, {"name": "x", "arguments": 5}]}')
    assert [(c.id, c.name, c.arguments) for c in calls.tool_calls] == [
        ("call_2", "lookup", {"q": 1}), ("call_3", "x", {"value": 5})]  # ids go on from the conversation's
    assert reply('{"final": {"a": 1}}').text == '{"a": 1}' and reply('{"final": "done"}').text == "done"
    assert reply("just text").text == "just text" and reply("just text").tool_calls == []


async def test_stored_conversations_are_content_addressed_and_encrypted(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_PAYLOAD_STORE", str(tmp_path))
    monkeypatch.setenv("TETHER_KEYS", "k-unit:" + base64.b64encode(os.urandom(32)).decode())
    root = _transcript.Node(messages=[Message(role="user", content="my secret plan")],
                            tools=[ToolSpec(name="t")])
    ref = await _transcript.put(root)
    assert ref == await _transcript.put(root) == _transcript.ref_of(root)
    child = await _transcript.put(_transcript.Node(parent=ref, messages=[Message(role="assistant", content="ok")]))
    _transcript._cache.clear()
    conversation = await _transcript.load(child)
    assert [m.content for m in conversation.messages] == ["my secret plan", "ok"]
    assert [t.name for t in conversation.tools] == ["t"]
    stored = list(tmp_path.iterdir())
    assert len(stored) == 2 and all(b"secret" not in p.read_bytes() for p in stored)
    with pytest.raises(tether.ConfigError, match="is not in the payload store"):
        await _transcript.load("0" * 32)


def test_provider_mapping_of_tools_and_tool_messages() -> None:
    call = ModelCall(model="openai:gpt-x", tools=[ToolSpec(name="lookup", description="Look.")],
                     output_schema={"type": "object", "properties": {"a": {"type": "integer"}}},
                     messages=[Message(role="user", content="hi"),
                               Message(role="assistant", content="", tool_calls=[
                                   ToolCall(id="c1", name="lookup", arguments={"q": "x"})]),
                               Message(role="tool", content="found", tool_call_id="c1", name="lookup")])
    _, response, results = _providers._messages(call)
    assert [type(p).__name__ for p in response.parts] == ["ToolCallPart"]
    assert (response.parts[0].tool_name, response.parts[0].tool_call_id) == ("lookup", "c1")
    (part,) = results.parts
    assert (type(part).__name__, part.tool_name, part.content, part.tool_call_id) == (
        "ToolReturnPart", "lookup", "found", "c1")
    params = _providers._parameters(call, None)
    assert [t.name for t in params.function_tools] == ["lookup"]
    assert [t.name for t in params.output_tools] == [_providers.FINAL_TOOL] and not params.allow_text_output


def test_definition_errors_are_clear() -> None:
    with pytest.raises(tether.UsageError, match="two tools are named 'unit_find_order'"):
        tether.Agent("scripted:x", tools=[find_order, find_order])
    with pytest.raises(tether.UsageError, match="max_turns must be an int >= 1"):
        tether.Agent("scripted:x", max_turns=0)
    with pytest.raises(tether.UsageError, match="not a 'provider:model' string"):
        tether.Agent("gpt-4o")
    with pytest.raises(tether.UsageError, match="pass names, never values"):
        tether.mcp.stdio("python -m crm", env=["CRM_TOKEN=abc"])
    with pytest.raises(tether.UsageError, match="needs an http"):
        tether.mcp.http("127.0.0.1:8000/mcp")
    with pytest.raises(tether.UsageError, match="needs a command"):
        tether.mcp.stdio("  ")
    with pytest.raises(tether.UsageError, match="zone name"):
        tether.mcp.stdio("python -m crm", zone="Bad Zone")


async def test_an_agent_runs_outside_workflows_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TETHER_PAYLOAD_STORE", str(tmp_path))
    model = ScriptedModel("unit-inline", lambda call: {"final": "ok"} if any(
        m.role == "tool" for m in call.messages) else {"tool_calls": [
            {"name": "unit_find_order", "arguments": {"order_id": "O-1"}}]})
    result = await tether.Agent(model.model, tools=[find_order]).run("find O-1")
    assert (result.output, result.turns, result.tool_calls) == ("ok", 2, 1)
    assert [m.role for m in result.transcript] == ["user", "assistant", "tool", "assistant"]
    assert result.transcript[2].content == '{"order": "O-1"}'


def test_model_strings_are_checked_for_fallbacks() -> None:
    assert parse_model("scripted:any").kind == "scripted"
    with pytest.raises(tether.UsageError, match="fallbacks: expected a list"):
        tether.Agent("scripted:x", fallbacks="local:smollm2")
