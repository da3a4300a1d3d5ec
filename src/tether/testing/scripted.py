"""Scripted models for tests of workflow logic: fixed replies in order, or a function of the call.

Create them in a module your workers import (e.g. `tests/apps/...`); the model string
`scripted:NAME` then works in any `tether.llm` call served by that process.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel

from tether import _registry
from tether.errors import ModelError, UsageError
from tether.llm._spec import scripted
from tether.llm._types import ModelCall, ModelReply, Usage

Reply = str | BaseModel | dict[str, Any] | BaseException
"""One scripted reply: text, a value sent as JSON, or an exception to raise (e.g. a `ModelError`)."""

ReplyFn = Callable[[ModelCall], Reply | Awaitable[Reply]]


class ScriptedModel:
    """A fake model that answers from a script; its model string is `scripted:NAME`.

    Args:
        name: The name after `scripted:`; unique per process.
        replies: Replies given in order (an error once they run out), or a function of
            the `ModelCall` (sync or async) returning the reply.
        delay: Seconds to wait before each reply (to stand in for a slow model).

    Attributes:
        calls: Every call this model received in this process, in order.

    Example:
        >>> flaky = ScriptedModel("flaky", ["{not json", '{"total": 12.5}'])
        >>> await llm.structured(Total, "...", model=flaky.model)
    """

    def __init__(self, name: str, replies: Sequence[Reply] | ReplyFn, *, delay: float = 0.0) -> None:
        if not name or ":" in name:
            raise UsageError(f"scripted model name {name!r}: use a plain name such as 'flaky'")
        self.name = name
        self.delay = delay
        self.calls: list[ModelCall] = []
        self._fn = replies if callable(replies) else None
        self._replies = [] if callable(replies) else list(replies)
        self._lock = threading.Lock()
        if not _registry._in_sandbox():  # Temporal's sandbox re-imports workflow modules per run
            scripted[name] = self.answer

    @property
    def model(self) -> str:
        """The model string to pass to `tether.llm` calls."""
        return f"scripted:{self.name}"

    async def answer(self, call: ModelCall) -> ModelReply:
        """Answer one call from the script (used by the model step)."""
        with self._lock:
            index = len(self.calls)
            self.calls.append(call)
        if self.delay:
            await asyncio.sleep(self.delay)
        reply = await self._reply(call, index)
        if isinstance(reply, BaseException):
            raise reply
        text = _text(reply)
        return ModelReply(model=call.model, text=text, response_model=self.model, finish_reason="stop",
                          usage=Usage(input_tokens=sum(_tokens(m.content) for m in call.messages),
                                      output_tokens=_tokens(text)))

    async def _reply(self, call: ModelCall, index: int) -> Reply:
        if self._fn is not None:
            out = self._fn(call)
            return await out if inspect.isawaitable(out) else out
        if index >= len(self._replies):
            return ModelError(f"{self.model}: no scripted reply left ({len(self._replies)} were given)",
                              model=self.model, retryable=False)
        return self._replies[index]

    def __repr__(self) -> str:
        return f"<ScriptedModel {self.model}>"


def tool_call(name: str, /, **arguments: Any) -> dict[str, Any]:
    """A scripted reply in which the model calls one tool (the format agents read from
    scripted and local models).

    Example:
        >>> model = ScriptedModel("agent", [tool_call("find_order", order_id="A-1"),
        ...                                 final({"status": "shipped"})])
    """
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


def tool_calls(*calls: dict[str, Any]) -> dict[str, Any]:
    """A scripted reply in which the model calls several tools at once (they run side by side).

    Example:
        >>> tool_calls(tool_call("find_order", order_id="A-1"), tool_call("find_customer", name="Ada"))
    """
    return {"tool_calls": [c for call in calls for c in call["tool_calls"]]}


def final(value: Any) -> dict[str, Any]:
    """A scripted reply that ends an agent's run with `value` (text, or data for its output type)."""
    return {"final": value.model_dump(mode="json") if isinstance(value, BaseModel) else value}


def _text(reply: Reply) -> str:
    if isinstance(reply, str):
        return reply
    if isinstance(reply, BaseModel):
        return reply.model_dump_json()
    return json.dumps(reply)


def _tokens(text: str) -> int:
    return max(1, len(text.split())) if text else 0
