"""The helpers users test workflows with: scripted tool calls, model substitutes, the README's test."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import tether
from tether import llm
from tether.llm import _tooltext
from tether.llm._substitute import substituted
from tether.llm._types import Message, ModelCall, ModelReply, ToolSpec
from tether.testing import ScriptedModel, final, tool_call, tool_calls

REPO = Path(__file__).resolve().parents[2]


def _read(reply: dict[str, object]) -> ModelReply:
    call = ModelCall(model="scripted:x", messages=[Message(role="user", content="hi")],
                     tools=[ToolSpec(name="find_order"), ToolSpec(name="find_customer")])
    return _tooltext.parse(ModelReply(model="scripted:x", text=json.dumps(reply)), call)


def test_scripted_tool_calls_are_read_as_an_agent_reads_them() -> None:
    one = _read(tool_call("find_order", order_id="A-1"))
    assert [(c.name, c.arguments) for c in one.tool_calls] == [("find_order", {"order_id": "A-1"})]
    both = _read(tool_calls(tool_call("find_order", order_id="A-1"), tool_call("find_customer", name="Ada")))
    assert [c.name for c in both.tool_calls] == ["find_order", "find_customer"]
    done = _read(final({"status": "shipped"}))
    assert not done.tool_calls and json.loads(done.text) == {"status": "shipped"}


async def test_a_scripted_model_replies_with_the_helpers_format() -> None:
    model = ScriptedModel("helpers-agent", [tool_call("find_order", order_id="A-1")])
    reply = await model.answer(ModelCall(model=model.model, messages=[Message(role="user", content="hi")]))
    assert json.loads(reply.text) == {"tool_calls": [{"name": "find_order", "arguments": {"order_id": "A-1"}}]}


def test_substitutes_match_patterns_nest_and_end_with_their_block(monkeypatch: pytest.MonkeyPatch) -> None:
    assert substituted("mistral:mistral-large-latest") == "mistral:mistral-large-latest"
    with llm.substitute({"mistral:*": "scripted:a"}):
        assert substituted("mistral:mistral-large-latest") == "scripted:a"
        assert substituted("openai:gpt-4.1") == "openai:gpt-4.1"
        with llm.substitute({"*": "scripted:b"}):
            assert substituted("mistral:small") == "scripted:b" and substituted("openai:x") == "scripted:b"
        assert substituted("openai:x") == "openai:x"
    assert substituted("mistral:mistral-large-latest") == "mistral:mistral-large-latest"
    monkeypatch.setenv("TETHER_MODEL_SUBSTITUTES", '{"anthropic:*": "scripted:c"}')
    assert substituted("anthropic:claude") == "scripted:c"
    monkeypatch.setenv("TETHER_MODEL_SUBSTITUTES", "{nope")
    with pytest.raises(tether.UsageError, match="TETHER_MODEL_SUBSTITUTES is not valid JSON"):
        substituted("anthropic:claude")
    with pytest.raises(tether.UsageError, match="expected a model string"), llm.substitute({"x:*": "nonsense"}):
        pass


def test_the_readme_testing_section_is_the_example_the_suite_runs() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Testing workflows", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    example = (REPO / "examples" / "test_refunds.py").read_text()
    for line in code.group(1).splitlines():
        assert line in example.splitlines(), f"README line not in examples/test_refunds.py: {line!r}"
