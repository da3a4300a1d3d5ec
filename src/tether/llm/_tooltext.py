"""Tool calling for models without a native tool API (`local:` and `scripted:` models).

Runs on workers, inside the model step. The tools are listed in the system prompt, earlier
tool calls and results are written out as text, and the reply is asked for as one JSON
object: `{"tool_calls": [{"name": ..., "arguments": {...}}]}` or `{"final": ...}`. For local
models llama.cpp compiles that shape (each tool's own argument schema included) into a
grammar, so even a very small model can only answer with a well-formed call of a real
tool or a final answer. Scripted models see the native conversation and may answer in
the same JSON (or plain text, taken as the final answer).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from tether.llm._grammar import grammar_safe
from tether.llm._json import json_text
from tether.llm._spec import ModelSpec
from tether.llm._types import Message, ModelCall, ModelReply, ToolCall, ToolSpec

Backend = Callable[[ModelCall, ModelSpec], Awaitable[ModelReply]]


def wanted(call: ModelCall) -> bool:
    """True when the call involves tools: tools are offered or the conversation has tool turns."""
    return bool(call.tools) or any(m.role == "tool" or m.tool_calls for m in call.messages)


async def complete(call: ModelCall, spec: ModelSpec, backend: Backend) -> ModelReply:
    """Ask `backend` with tools written as text, and read tool calls back from its JSON reply."""
    sent = call if spec.kind == "scripted" else render(call)
    reply = await backend(sent, spec)
    return parse(reply, call)


def render(call: ModelCall) -> ModelCall:
    """`call` as plain chat: tools described in the system prompt, tool turns as text, and the
    reply constrained to the action schema."""
    guide = _guide(call.tools, call.output_schema)
    messages = [_plain(m) for m in call.messages]
    if messages and messages[0].role == "system":
        messages[0] = Message(role="system", content=f"{messages[0].content}\n\n{guide}")
    else:
        messages.insert(0, Message(role="system", content=guide))
    schema = action_schema(call.tools, call.output_schema, output_name=call.output_name)
    return call.model_copy(update={"messages": messages, "tools": [], "output_schema": schema})


def _plain(m: Message) -> Message:
    if m.role == "tool":
        return Message(role="user", content=f"Result of {m.name}:\n{m.content}")
    if m.tool_calls:
        calls = [{"name": c.name, "arguments": c.arguments} for c in m.tool_calls]
        return Message(role="assistant", content=json.dumps({"tool_calls": calls}, ensure_ascii=False))
    return Message(role=m.role, content=m.content)


def _guide(tools: list[ToolSpec], output_schema: dict[str, Any] | None) -> str:
    lines = ["You can call these tools:"]
    for t in tools:
        lines.append(f"- {t.name}({_signature(t.parameters)}): {t.description or 'no description'}")
    final = "your final answer as a JSON object matching the output schema" if output_schema \
        else "your final answer as text"
    lines.append('Reply with one JSON object: {"tool_calls": [{"name": TOOL, "arguments": {...}}]} '
                 f'to call tools, or {{"final": ...}} with {final}. Tool results come back as messages.')
    return "\n".join(lines)


MAX_STRING = 160
"""Strings without a length limit are capped at this many characters in the grammar: small
models otherwise repeat themselves inside a string until the reply runs out of tokens."""

MAX_CALLS = 4
"""Tool calls a local model may ask for in one turn."""


def _signature(parameters: dict[str, Any]) -> str:
    """Arguments as `name: type (description)`, shorter than the schema for small models to read."""
    props = inline_refs(parameters).get("properties", {})
    parts = []
    for name, prop in props.items():
        kind = prop.get("type") or ("enum" if "enum" in prop else "value")
        if "enum" in prop:
            kind = " | ".join(json.dumps(v) for v in prop["enum"])
        about = f" ({prop['description']})" if prop.get("description") else ""
        parts.append(f"{name}: {kind}{about}")
    return ", ".join(parts)


def action_schema(tools: list[ToolSpec], output_schema: dict[str, Any] | None, *,
                  output_name: str | None = None) -> dict[str, Any]:
    """The JSON schema of a reply: calls of the given tools (each with its own arguments) or a final answer.

    Raises:
        ConfigError: A tool argument or output field has a pattern llama.cpp's grammar cannot
            express (the message names the tool and argument, or the field).
    """
    calls = [{"type": "object", "properties": {"name": {"const": t.name}, "arguments": _object(
        grammar_safe(inline_refs(t.parameters), f"tool {t.name!r}, argument "))},
              "required": ["name", "arguments"]} for t in tools]
    answer = grammar_safe(inline_refs(output_schema), f"{output_name}." if output_name else "") \
        if output_schema else {"type": "string"}
    final: dict[str, Any] = {"type": "object", "properties": {"final": answer}, "required": ["final"]}
    if not calls:
        return _bounded(final)  # type: ignore[no-any-return]
    use_tools = {"type": "object", "properties": {"tool_calls": {
        "type": "array", "items": calls[0] if len(calls) == 1 else {"anyOf": calls}, "minItems": 1,
        "maxItems": MAX_CALLS}}, "required": ["tool_calls"]}
    return _bounded({"anyOf": [use_tools, final]})  # type: ignore[no-any-return]


def _bounded(node: Any) -> Any:
    if isinstance(node, list):
        return [_bounded(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _bounded(v) for k, v in node.items()}
    if out.get("type") == "string" and not {"maxLength", "enum", "const", "pattern", "format"} & out.keys():
        out["maxLength"] = MAX_STRING
    return out


def _object(schema: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in schema.items() if k not in ("title", "description")}
    out.setdefault("type", "object")
    out.setdefault("properties", {})
    return out


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with local `$ref`s to `$defs` replaced by the definitions (grammar compilers
    and prompts handle a self-contained schema best). Recursive definitions stay as refs."""
    defs = schema.get("$defs", {})

    def walk(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref.rsplit("/", 1)[1]
                if name in defs and name not in seen:
                    return walk(defs[name], (*seen, name))
            return {k: walk(v, seen) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v, seen) for v in node]
        return node

    return walk(schema, ())  # type: ignore[no-any-return]


def parse(reply: ModelReply, call: ModelCall) -> ModelReply:
    """`reply` with the tool calls its JSON text asks for, or its final answer as text.

    Text that is not the action JSON is taken as a final answer as it stands.
    """
    data = _json_object(reply.text)
    if data is None:
        return reply
    calls = data.get("tool_calls")
    if isinstance(calls, list) and calls:
        made = sum(len(m.tool_calls or []) for m in call.messages)  # ids count on: same prompt, same ids
        found = [_call(c, made + i + 1) for i, c in enumerate(calls)]
        return reply.model_copy(update={"tool_calls": found, "text": "", "finish_reason": "tool_calls"})
    if "final" in data:
        final = data["final"]
        text = final if isinstance(final, str) else json.dumps(final, ensure_ascii=False)
        return reply.model_copy(update={"text": text})
    return reply


def _call(raw: Any, n: int) -> ToolCall:
    item = raw if isinstance(raw, dict) else {}
    args = item.get("arguments", {})
    return ToolCall(id=f"call_{n}", name=str(item.get("name", "")),
                    arguments=args if isinstance(args, dict) else {"value": args})


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(json_text(text))
    except (json.JSONDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None
