"""The tool-using agent loop: every model turn and every tool call is a durable step.

Runs in workflow code (and in scripts and unit tests, where the steps simply run). A turn
is one model step (`tether.llm`'s, so usage, cost, tracing and retries apply); the tools
it asks for run concurrently, each as its own step in its own zone, after a person's
approval where required; a tool's failure goes back to the model as the tool's result.
The conversation is kept out of band by the model step, so each turn's step input is a
reference plus the new messages: a run's history grows by a bounded amount per turn.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from tether import budget
from tether.budget import Budget, Ledger, Usage, agent_ledger
from tether.errors import MaxTurnsExceeded, ModelError, ModelOutputInvalid, StepFailed, UsageError
from tether.human import confirm
from tether.llm._calls import _all_failed, _output, ask, default_model, error_lines
from tether.llm._json import json_text
from tether.llm._spec import parse_model
from tether.llm._transcript import reply_message
from tether.llm._types import Message, ModelCall, ModelReply, RunUsage, ToolCall
from tether.observe import tool_call
from tether.tools._tool import InvalidArguments, Tool, Toolset, as_tools
from tether.workflow import continue_as_new, gather, in_workflow

T = TypeVar("T")


class AgentResult(BaseModel, Generic[T]):
    """What an agent run produced.

    Attributes:
        output: The final answer: an instance of the agent's `output_type`, or text.
        transcript: The conversation of this run (instructions, input, every turn and tool result).
        transcript_ref: Reference of the whole conversation in the payload store.
        turns: Model turns taken (across continue-as-new, when resumed).
        tool_calls: Tool calls made.
        usage: Calls, tokens and cost per model.
    """

    output: T
    transcript: list[Message] = Field(default_factory=list)
    transcript_ref: str | None = None
    turns: int = 0
    tool_calls: int = 0
    usage: RunUsage = Field(default_factory=RunUsage)

    @property
    def cost(self) -> float:
        """Cost in USD of the priced model calls."""
        return self.usage.cost


class AgentCheckpoint(BaseModel):
    """Where an agent run stands, small enough to carry into `continue_as_new`.

    Attributes:
        transcript_ref: The stored conversation so far.
        pending: Messages (tool results) not yet sent to the model.
        turns / tool_calls / repairs: Counts so far.
        usage: Model usage so far.
    """

    transcript_ref: str
    pending: list[Message] = Field(default_factory=list)
    turns: int = 0
    tool_calls: int = 0
    repairs: int = 0
    usage: RunUsage = Field(default_factory=RunUsage)


@dataclass
class _State:
    tools: dict[str, Tool]
    pending: list[Message]
    head: str | None = None
    turns: int = 0
    turns_here: int = 0
    tool_calls: int = 0
    repairs: int = 0
    send_tools: bool = True
    usage: RunUsage = field(default_factory=RunUsage)
    transcript: list[Message] = field(default_factory=list)
    done: dict[str, str] = field(default_factory=dict)  # results of the calls made, by tool and arguments
    ledger: Ledger | None = None  # the agent's own budget, if it has one

    def checkpoint(self) -> AgentCheckpoint:
        assert self.head is not None
        return AgentCheckpoint(transcript_ref=self.head, pending=self.pending, turns=self.turns,
                               tool_calls=self.tool_calls, repairs=self.repairs, usage=self.usage)


class Agent(Generic[T]):
    """A model that decides which tools to call, turn by turn, until it gives a final answer.

    Create it at import time (module level) and `await agent.run(...)` in a workflow.

    Args:
        model: Model string (default: `tether.llm.default_model()`).
        instructions: The system prompt: the agent's job, rules and tone.
        tools: Steps, plain functions, `tether.tool(...)`s and MCP servers (`tether.mcp.stdio`,
            `tether.mcp.http`).
        output_type: Type of the final answer (a pydantic model); None for text.
        max_turns: Model turns allowed before `MaxTurnsExceeded`.
        fallbacks: Models tried in order when the model fails for good in a turn.
        name: The agent's name in histories and traces.
        temperature / max_tokens: Sampling settings of every turn.
        repairs: Re-asks after a final answer that does not validate against `output_type`.
        turns_per_run: With `run(continue_with=...)`, continue the workflow as new after this
            many turns, so very long agent runs keep a small history.
        allow_repeats: Run a call again when the model repeats one it already made with the
            same arguments. By default the repeat is answered with the earlier result and a
            note, so a looping model cannot update a record (or ask a person) twice.
        budget: Limits on this agent's model calls, tokens, cost and tool calls in one
            `run` (`tether.Budget`), within the run's own budget; going over raises
            `BudgetExceeded` (or asks a person, with `on_exceed=`).

    Example:
        >>> support = tether.Agent(model="local:smollm2", instructions="Resolve the ticket.",
        ...                        tools=[find_customer, tether.tool(refund, needs_approval=True)],
        ...                        output_type=Resolution, max_turns=8)
        >>> result = await support.run(ticket.text)
        >>> result.output, result.usage.cost
    """

    @overload
    def __init__(self: Agent[str], model: str | None = None, *, instructions: str = "", tools: Sequence[Any] = (),
                 output_type: None = None, max_turns: int = 10, fallbacks: Sequence[str] = (),
                 name: str = "agent", temperature: float | None = None, max_tokens: int | None = None,
                 repairs: int = 2, turns_per_run: int = 100, allow_repeats: bool = False,
                 budget: Budget | None = None) -> None: ...

    @overload
    def __init__(self: Agent[T], model: str | None = None, *, instructions: str = "", tools: Sequence[Any] = (),
                 output_type: type[T], max_turns: int = 10, fallbacks: Sequence[str] = (),
                 name: str = "agent", temperature: float | None = None, max_tokens: int | None = None,
                 repairs: int = 2, turns_per_run: int = 100, allow_repeats: bool = False,
                 budget: Budget | None = None) -> None: ...

    def __init__(self, model: str | None = None, *, instructions: str = "", tools: Sequence[Any] = (),
                 output_type: type[T] | None = None, max_turns: int = 10, fallbacks: Sequence[str] = (),
                 name: str = "agent", temperature: float | None = None, max_tokens: int | None = None,
                 repairs: int = 2, turns_per_run: int = 100, allow_repeats: bool = False,
                 budget: Budget | None = None) -> None:
        if isinstance(fallbacks, str):
            raise UsageError("fallbacks: expected a list of model strings, e.g. fallbacks=['local:smollm2']")
        for m in [model, *fallbacks] if model else fallbacks:
            parse_model(m)
        for what, n in (("max_turns", max_turns), ("turns_per_run", turns_per_run)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise UsageError(f"{what} must be an int >= 1, got {n!r}")
        self.model = model
        self.fallbacks = list(fallbacks)
        self.instructions = instructions
        self.tools, self.toolsets = as_tools(tools)
        self._order: list[Any] = _in_order(tools, self.tools, self.toolsets)
        _unique([t.name for t in self.tools])
        self.output_type = output_type
        self._adapter: TypeAdapter[Any] | None = None
        self._schema: dict[str, Any] | None = None
        self._output_name: str | None = None
        if output_type is not None:
            self._adapter, self._schema, self._output_name = _output(output_type)
        self.max_turns = max_turns
        self.name = name
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.repairs = repairs
        self.turns_per_run = turns_per_run
        self.allow_repeats = allow_repeats
        if budget is not None and not isinstance(budget, Budget):
            raise UsageError(f"agent {name!r}: budget takes tether.Budget(...), got {budget!r}")
        self.budget = budget

    async def run(self, input: Any = None, *, resume: AgentCheckpoint | None = None,
                  continue_with: Callable[[AgentCheckpoint], Any] | None = None) -> AgentResult[T]:
        """Run the agent on `input` until it gives a final answer.

        Args:
            input: The task: text, or a pydantic model / JSON-like value (sent as JSON).
            resume: A checkpoint from an earlier run of this agent (after `continue_as_new`);
                `input` is then ignored.
            continue_with: Turns a checkpoint into this workflow's next input; when given,
                the run continues as new every `turns_per_run` turns.

        Returns:
            The final output, the transcript, turns, tool calls and model usage.

        Raises:
            MaxTurnsExceeded: No final answer within `max_turns` (carries the transcript).
            ModelOutputInvalid: The final answer never validated against `output_type`.
            ModelError: Every model failed in a turn.
            MCPServerFailed: An MCP server could not be started or reached.
        """
        st = await self._start(input, resume)
        while True:
            self._check_limits(st, continue_with)
            reply = await self._turn(st)
            self._record(st, reply)
            if reply.tool_calls:
                st.pending = list(await gather(*self._calls(st, reply.tool_calls)))
                st.tool_calls += len(reply.tool_calls)
                continue
            output = self._final(st, reply)
            if output is not _RETRY:
                return AgentResult(output=output, transcript=st.transcript, transcript_ref=st.head,
                                   turns=st.turns, tool_calls=st.tool_calls, usage=st.usage)

    async def _start(self, input: Any, resume: AgentCheckpoint | None) -> _State:
        found = await gather(*(ts.tools() for ts in self.toolsets)) if self.toolsets else []
        listed = dict(zip(map(id, self.toolsets), found, strict=True))
        tools: list[Tool] = []  # in the order of tools=[...]: small models favour the first ones
        for item in self._order:
            tools += listed.get(id(item), [item])
        _unique([t.name for t in tools])
        by_name = {t.name: t for t in tools}
        ledger = agent_ledger(self.budget, self.name)
        if resume is not None:
            if ledger is not None:  # what the agent spent before continuing as new
                ledger.used = Usage(cost_usd=resume.usage.cost, model_calls=resume.usage.calls,
                                    tokens=resume.usage.input_tokens + resume.usage.output_tokens,
                                    tool_calls=resume.tool_calls)
            return _State(tools=by_name, pending=list(resume.pending), head=resume.transcript_ref,
                          turns=resume.turns, tool_calls=resume.tool_calls, repairs=resume.repairs,
                          usage=resume.usage.model_copy(deep=True), ledger=ledger)
        first = [Message(role="system", content=self.instructions)] if self.instructions else []
        return _State(tools=by_name, pending=[*first, Message(role="user", content=_text(input))], ledger=ledger)

    def _check_limits(self, st: _State, continue_with: Callable[[AgentCheckpoint], Any] | None) -> None:
        if st.turns >= self.max_turns:
            raise MaxTurnsExceeded(
                f"agent {self.name!r} reached max_turns={self.max_turns} without a final answer "
                f"({st.tool_calls} tool calls); raise max_turns or narrow its task",
                agent=self.name, max_turns=self.max_turns, transcript=[*st.transcript, *st.pending],
                transcript_ref=st.head)
        if continue_with is not None and st.turns_here >= self.turns_per_run and in_workflow():
            continue_as_new(continue_with(st.checkpoint()))

    async def _turn(self, st: _State) -> ModelReply:
        failures: list[ModelError] = []
        for i, model in enumerate([self.model or default_model(), *self.fallbacks]):
            why = f"{self.name} turn {st.turns + 1}" + (f"; after {failures[-1]}" if failures else "")
            call = ModelCall(model=model, messages=st.pending, tools=[t.spec for t in st.tools.values()]
                             if st.send_tools else [], transcript=st.head, keep_transcript=True,
                             purpose="agent", temperature=self.temperature, max_tokens=self.max_tokens,
                             output_schema=self._schema, output_name=self._output_name, fallback=i,
                             repair=st.repairs, reason=why)
            try:  # ask() runs the egress guard: a tool result carrying a handle never reaches the model
                return await ask(call, agent_budget=st.ledger)
            except ModelError as exc:
                failures.append(exc)
        raise _all_failed(failures)

    def _record(self, st: _State, reply: ModelReply) -> None:
        st.transcript += [*st.pending, reply_message(reply)]
        st.pending = []
        st.head = reply.transcript
        st.turns += 1
        st.turns_here += 1
        st.send_tools = False
        st.usage.add(reply)

    def _final(self, st: _State, reply: ModelReply) -> Any:
        if self._adapter is None:
            return reply.text
        try:
            return self._adapter.validate_json(json_text(reply.text))
        except ValidationError as exc:
            errors = error_lines(exc)
            if st.repairs >= self.repairs:
                raise ModelOutputInvalid(
                    f"agent {self.name!r}: no valid {self._output_name} after {st.repairs} repairs: "
                    f"{errors[0]}", model=reply.model, raw=reply.text, errors=errors, tried=[reply.model]) from None
            st.repairs += 1
            listed = "\n".join(f"- {e}" for e in errors[:10])
            st.pending = [Message(role="user", content=f"Your final answer is not valid:\n{listed}\n"
                                                       "Give the final answer again, corrected.")]
            return _RETRY

    def _calls(self, st: _State, calls: list[ToolCall]) -> list[Awaitable[Message]]:
        """One awaitable per call, run concurrently; a call repeated within the turn does not run twice."""
        seen: set[str] = set()
        out: list[Awaitable[Message]] = []
        for c in calls:
            key = _call_key(c.name, c.arguments)
            if key in seen and not self.allow_repeats:
                out.append(_ready(_result(c, f"error: the same call of {c.name} is already in this turn; not run")))
            else:
                seen.add(key)
                out.append(self._call(st, c))
        return out

    async def _call(self, st: _State, call: ToolCall) -> Message:
        tool = st.tools.get(call.name)
        if tool is None:
            return _result(call, f"error: there is no tool named {call.name!r}; the tools are: "
                                 f"{', '.join(st.tools) or 'none'}")
        key = _call_key(tool.name, call.arguments)
        if key in st.done and not self.allow_repeats:  # nothing runs (or asks a person) twice
            return _result(call, f"error: you already called {tool.name} with these arguments; the result "
                                 f"was: {st.done[key][:500]} -- do not repeat it: call another tool or give the "
                                 "final answer")
        with tool_call(tool.name, call_id=call.id, tool_type=tool.kind, arguments=call.arguments):
            text = await self._use(st, tool, call)
        st.done[key] = text
        return _result(call, text)

    async def _use(self, st: _State, tool: Tool, call: ToolCall) -> str:
        try:
            checked = tool.check(call.arguments)
        except InvalidArguments as exc:
            return f"error: invalid arguments for {tool.name}: {exc}"
        if tool.needs_approval and not await self._approved(tool, call):
            return f"refused: a person did not approve this call of {tool.name}; do not retry it"
        await budget.before_tool_call(st.ledger)  # over budget: BudgetExceeded ends the run (or a person decides)
        try:
            text, is_error = await tool.run(checked)
        except StepFailed as exc:
            return f"error: {tool.name} failed: {exc.error_message}"
        return f"error: {text}" if is_error and not text.startswith("error") else text

    async def _approved(self, tool: Tool, call: ToolCall) -> bool:
        args = json.dumps(call.arguments, ensure_ascii=False, sort_keys=True)
        question = f"Agent {self.name!r} wants to call {tool.name} with {args}. Allow it?"
        return await confirm(question, assignee=tool.approver, timeout=tool.approval_timeout,
                             context={"agent": self.name, "tool": tool.name, "arguments": call.arguments},
                             on_timeout=False if tool.approval_timeout is not None else None)

    def __repr__(self) -> str:
        return f"<tether agent {self.name!r} model={self.model or 'default'!r}>"


_RETRY: Any = object()


def _call_key(name: str, arguments: dict[str, Any]) -> str:
    return f"{name} {json.dumps(arguments, sort_keys=True, default=str)}"


async def _ready(message: Message) -> Message:
    return message


def _result(call: ToolCall, text: str) -> Message:
    return Message(role="tool", content=text, tool_call_id=call.id, name=call.name)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        raise UsageError("agent.run needs an input: the task as text or a pydantic model")
    return json.dumps(TypeAdapter(Any).dump_python(value, mode="json"), ensure_ascii=False)


def _in_order(items: Sequence[Any], tools: list[Tool], toolsets: list[Toolset]) -> list[Any]:
    """Tools and toolsets in the order they were given (as_tools keeps each list in order)."""
    t, s = iter(tools), iter(toolsets)
    return [next(s) if isinstance(item, Toolset) and not isinstance(item, Tool) else next(t) for item in items]


def _unique(names: list[str]) -> None:
    seen: set[str] = set()
    twice = sorted({n for n in names if n in seen or seen.add(n)})  # type: ignore[func-returns-value]
    if twice:
        raise UsageError(f"two tools are named {', '.join(map(repr, twice))}; rename one with "
                         "tether.tool(..., name=...) or give an MCP server a prefix=")


__all__ = ["Agent", "AgentCheckpoint", "AgentResult", "Tool", "Toolset"]
