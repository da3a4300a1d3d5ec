"""The data of a model call as it crosses the step boundary: request, reply, usage.

Plain pydantic models, importable anywhere (workflow code, workers, the CLI).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Role = Literal["system", "user", "assistant", "tool"]


class ToolSpec(BaseModel):
    """A tool a model may call: its name, what it does and the JSON schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolCall(BaseModel):
    """A model's request to call a tool (`id` pairs it with the tool's result message)."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    """One message of a conversation with a model.

    An assistant message may carry `tool_calls`; a "tool" message is a tool's result,
    with the `tool_call_id` and `name` of the call it answers.
    """

    role: Role
    content: str
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class ModelCall(BaseModel):
    """What one durable model step sends: the model, the conversation and the output wanted.

    Attributes:
        model: The model string (`provider:model`).
        messages: The conversation, oldest first (system messages included).
        temperature: Sampling temperature (None: the provider's default).
        max_tokens: Limit on the reply's length (None: the provider's default).
        output_schema: JSON schema of the structured output wanted (None: free text).
        output_name: Name of the output type (used by providers that name schemas).
        purpose: "chat", "structured", "classify" or "extract", for people reading the run.
        repair: 0 for the first ask, k for the k-th re-ask after an invalid reply.
        fallback: 0 for the primary model, k for the k-th fallback model.
        reason: Why this is a re-ask or a fallback (the previous reply's first validation
            error, or the previous model's failure), for people reading the run.
        tools: Tools the model may call (agents); the reply's `tool_calls` says which it chose.
        transcript: Reference of a conversation stored out of band that `messages` continue
            (agents: the step input stays small however long the conversation gets).
        keep_transcript: Store the conversation (and the reply) out of band; the reply's
            `transcript` names it. Implied by `transcript`.
    """

    model: str
    messages: list[Message]
    temperature: float | None = None
    max_tokens: int | None = None
    output_schema: dict[str, Any] | None = None
    output_name: str | None = None
    purpose: Literal["chat", "structured", "classify", "extract", "agent"] = "chat"
    repair: int = 0
    fallback: int = 0
    reason: str | None = None
    tools: list[ToolSpec] = Field(default_factory=list)
    transcript: str | None = None
    keep_transcript: bool = False

    @property
    def round_label(self) -> str:
        """"first", "repair 2", "fallback 1", "fallback 1 repair 1"."""
        parts = []
        if self.fallback:
            parts.append(f"fallback {self.fallback}")
        if self.repair:
            parts.append(f"repair {self.repair}")
        return " ".join(parts) or "first"


class Usage(BaseModel):
    """Tokens a model call consumed."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


class ModelReply(BaseModel):
    """What one durable model step returns.

    Attributes:
        model: The model string that was asked.
        text: The reply's text (for structured calls: the raw JSON, validated by the caller).
        usage: Tokens consumed.
        cost: Cost in USD from the price table; None when the model has no known price.
        response_model: The model name the provider reported, if any.
        finish_reason: Why generation stopped ("stop", "length", …), if reported.
        seconds: Wall time of the provider call.
        tool_calls: Tools the model asked to call (empty for a final reply).
        cached: Answered from the development model-call cache (`TETHER_MODEL_CACHE`): no
            request was sent, no tokens or cost were spent.
        transcript: Reference of the stored conversation including this reply (when the
            call kept its transcript out of band).
    """

    model: str
    text: str
    usage: Usage = Field(default_factory=Usage)
    cost: float | None = None
    response_model: str | None = None
    finish_reason: str | None = None
    seconds: float = 0.0
    tool_calls: list[ToolCall] = Field(default_factory=list)
    transcript: str | None = None
    cached: bool = False


class ChatResult(BaseModel):
    """The result of `llm.chat`: the reply's text, which model gave it, tokens and cost."""

    text: str
    model: str
    usage: Usage
    cost: float | None = None

    def __str__(self) -> str:
        return self.text


class ModelUsage(BaseModel):
    """Calls, tokens and cost of one model, or of all models together."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    unpriced_calls: int = 0

    def add(self, reply: ModelReply) -> None:
        """Count one reply."""
        self.calls += 1
        self.input_tokens += reply.usage.input_tokens
        self.output_tokens += reply.usage.output_tokens
        if reply.cost is None:
            self.unpriced_calls += 1
        else:
            self.cost += reply.cost


class RunUsage(ModelUsage):
    """Model usage of a run (or, outside workflows, of this process): totals and per model."""

    by_model: dict[str, ModelUsage] = Field(default_factory=dict)

    def add(self, reply: ModelReply) -> None:
        """Count one reply in the totals and under its model."""
        super().add(reply)
        self.by_model.setdefault(reply.model, ModelUsage()).add(reply)
