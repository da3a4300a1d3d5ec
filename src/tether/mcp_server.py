"""Serve a tether app's workflows as MCP tools (stdio or streamable HTTP), for `tether mcp serve`.

Runs in the serving process, beside a tether `Client`. Each registered workflow is a tool
whose input schema is the workflow's input type: a call starts a run and returns its
result, or, when the run takes longer than `wait` seconds, its id and status. Three more
tools follow such runs: `tether_run_status`, `tether_list_tasks` (open human tasks) and
`tether_answer_task`.

Answers record `mcp:<client name>` as who answered (a name passed as `on_behalf_of` is kept
apart). An MCP client may not answer the tasks of runs started through MCP, nor those of
the run that calls the tool (sent as `_meta["tether/run_id"]` by tether's MCP client): an
agent must not approve its own approval. `allow_self_answer=True` lifts that.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from tether.engine.client import STARTED_BY, Client, Run
from tether.errors import RunCancelled, RunFailed, TetherError, UsageError
from tether.tools._tool import tool_name
from tether.workflow import Workflow

STATUS_TOOL = "tether_run_status"
TASKS_TOOL = "tether_list_tasks"
ANSWER_TOOL = "tether_answer_task"
MAX_WAIT_SECONDS = 300.0
"""Longest `wait_seconds` a status call may ask for (a call holds a server slot meanwhile)."""
CALLER_META = "tether/run_id"
"""Request `_meta` key naming the run whose agent calls the tool (set by tether's MCP client)."""

_HELPERS: dict[str, tuple[str, dict[str, Any]]] = {
    STATUS_TOOL: ("Status of a run started by another tool: its result when it has finished, else its "
                  "open human tasks. Optionally wait up to wait_seconds for it to finish.",
                  {"type": "object", "properties": {"run_id": {"type": "string"},
                                                    "wait_seconds": {"type": "number", "minimum": 0,
                                                                     "maximum": MAX_WAIT_SECONDS, "default": 0}},
                   "required": ["run_id"]}),
    TASKS_TOOL: ("Open human tasks (questions runs wait on), optionally of one run, with the schema "
                 "each answer must match.",
                 {"type": "object", "properties": {"run_id": {"type": "string"}}}),
    ANSWER_TOOL: ("Answer an open human task; the answer must match the task's answer_schema. Tasks of runs "
                  "started through MCP, or of the run calling this tool, are for people to answer.",
                  {"type": "object", "properties": {"task_id": {"type": "string"}, "answer": {},
                                                    "on_behalf_of": {"type": "string"}},
                   "required": ["task_id", "answer"]}),
}


class WorkflowTools:
    """The MCP tools of a set of workflows, and what calling each does.

    Args:
        client: Where runs are started and read.
        workflows: The workflows to offer, by name.
        wait: Seconds a call waits for its run's result before returning the run id instead.
        allow_self_answer: Let MCP clients answer tasks of runs started through MCP and of
            the run calling the tool (off: those are for people).
    """

    def __init__(self, client: Client, workflows: Mapping[str, Workflow[Any, Any]], *, wait: float = 30.0,
                 allow_self_answer: bool = False) -> None:
        self.client = client
        self.wait = wait
        self.allow_self_answer = allow_self_answer
        self.workflows = {tool_name(name): wf for name, wf in sorted(workflows.items())}

    def listing(self) -> list[Any]:
        """The tools, as `mcp` Tool definitions."""
        import mcp_types as types

        tools = [types.Tool(name=name, description=_describe(wf), input_schema=input_schema(wf))
                 for name, wf in self.workflows.items()]
        tools += [types.Tool(name=name, description=text, input_schema=schema)
                  for name, (text, schema) in _HELPERS.items()]
        return tools

    async def call(self, name: str, arguments: dict[str, Any], *, client: str = "unknown",
                   caller_run: str | None = None) -> tuple[dict[str, Any], bool]:
        """Run a tool; returns (structured result, is_error).

        Args:
            name: The tool.
            arguments: Its arguments.
            client: The MCP client's name (from its `initialize`), recorded as `mcp:<client>`.
            caller_run: The run whose agent calls the tool, when the client says so.
        """
        who = f"mcp:{client[:100]}"
        try:
            if name in self.workflows:
                return await self._start(self.workflows[name], arguments, who), False
            if name == STATUS_TOOL:
                return await self._status(str(arguments["run_id"]), wait_seconds(arguments.get("wait_seconds"))), False
            if name == TASKS_TOOL:
                return await self._tasks(arguments.get("run_id")), False
            if name == ANSWER_TOOL:
                return await self._answer(arguments, who, caller_run), False
        except (TetherError, KeyError, ValueError) as exc:
            return {"error": _one_line(exc)}, True
        return {"error": f"no tool named {name!r}"}, True

    async def _start(self, wf: Workflow[Any, Any], arguments: dict[str, Any], who: str) -> dict[str, Any]:
        value = arguments if _object_input(wf) else arguments.get("input")
        run = await self.client.start(wf, None if wf.input_name is None else value, started_by=who)
        return await self._outcome(run, self.wait)

    async def _status(self, run_id: str, wait: float) -> dict[str, Any]:
        run = self.client.get(run_id)
        detail = await run.describe()
        if detail.status == "running":
            return await self._outcome(run, wait)
        if detail.status == "completed":
            return {"run_id": run_id, "status": "completed", "result": detail.result}
        return {"run_id": run_id, "status": detail.status, "error": detail.error}

    async def _outcome(self, run: Run[Any], wait: float) -> dict[str, Any]:
        waiting = asyncio.ensure_future(run.result())
        done, _ = await asyncio.wait({waiting}, timeout=wait)
        if not done:
            waiting.cancel()
            tasks = await self._tasks(run.id)
            return {"run_id": run.id, "status": "running", **tasks,
                    "next": f"call {STATUS_TOOL} with this run_id to get the result"
                            + (f"; answer its open tasks with {ANSWER_TOOL}" if tasks["tasks"] else "")}
        try:
            result = waiting.result()
        except RunFailed as exc:
            return {"run_id": run.id, "status": "failed", "error": exc.error_message, "error_type": exc.error_type}
        except RunCancelled:
            return {"run_id": run.id, "status": "cancelled"}
        return {"run_id": run.id, "status": "completed", "result": _json(result)}

    async def _tasks(self, run_id: str | None) -> dict[str, Any]:
        found = await self.client.tasks.list(run_id=run_id)
        return {"tasks": [{"task_id": t.id, "run_id": t.run_id, "question": t.question, "assignee": t.assignee,
                           "answer_schema": t.answer_schema, "context": t.context} for t in found]}

    async def _answer(self, arguments: dict[str, Any], who: str, caller_run: str | None) -> dict[str, Any]:
        task_id = str(arguments["task_id"])
        task = await self.client.tasks.get(task_id)
        if not self.allow_self_answer:
            await self._refuse_own(task.id, task.run_id, caller_run)
        claimed = arguments.get("on_behalf_of") or arguments.get("answered_by")
        done = await self.client.tasks.answer(task_id, arguments["answer"], by=who,
                                              claimed_by=str(claimed)[:200] if claimed else None)
        return {"task_id": task_id, "status": "answered", "answered_by": done.answered_by}

    async def _refuse_own(self, task_id: str, run_id: str, caller_run: str | None) -> None:
        how = "is the run calling this tool" if caller_run and _same_run(run_id, caller_run) else None
        for ancestor in _lineage(run_id) if how is None else []:  # a child of an MCP-started run counts too
            desc = await self.client.temporal.get_workflow_handle(ancestor).describe()
            starter = await desc.memo_value(STARTED_BY, None)
            if isinstance(starter, str) and starter.startswith("mcp:"):
                how = f"was started through MCP (by {starter})" if ancestor == run_id else \
                    f"is a child of run {ancestor}, started through MCP (by {starter})"
                break
        if how is not None:
            raise UsageError(f"task {task_id} belongs to run {run_id}, which {how}: an MCP client may not "
                             "answer it (an agent must not approve its own request); a person answers it with "
                             f"`tether tasks answer {task_id}`, Studio or the HTTP API (`tether mcp serve "
                             "--allow-self-answer` lifts this)")


def _lineage(run_id: str) -> list[str]:
    """The run and the runs it descends from, itself first (child ids are `<parent>/<child>`)."""
    parts = run_id.split("/")
    return ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _same_run(run_id: str, caller: str) -> bool:
    """The same run, or one of the caller's child runs (`<parent>/<child>` ids)."""
    return run_id == caller or run_id.startswith(caller + "/") or caller.startswith(run_id + "/")


def wait_seconds(raw: Any) -> float:
    """`wait_seconds` as a number of seconds between 0 and `MAX_WAIT_SECONDS`.

    Raises:
        UsageError: It is not a number in that range.
    """
    try:
        value = float(raw or 0)
    except (TypeError, ValueError):
        raise UsageError(f"wait_seconds must be a number of seconds, got {raw!r}") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_WAIT_SECONDS:
        raise UsageError(f"wait_seconds must be between 0 and {MAX_WAIT_SECONDS:g}, got {raw!r}; call "
                         f"{STATUS_TOOL} again to wait longer")
    return value


def input_schema(wf: Workflow[Any, Any]) -> dict[str, Any]:
    """The tool's input schema: the workflow's input model, or `{"input": ...}` for a plain type."""
    if wf.input_name is None:
        return {"type": "object", "properties": {}}
    schema = wf.input_schema()
    if _object_input(wf):
        return schema
    defs = schema.pop("$defs", None)
    wrapped: dict[str, Any] = {"type": "object", "properties": {"input": schema}, "required": ["input"]}
    if defs:
        wrapped["$defs"] = defs
    return wrapped


def _object_input(wf: Workflow[Any, Any]) -> bool:
    if wf.input_name is None:
        return True
    return wf.input_schema().get("type") == "object"


def _describe(wf: Workflow[Any, Any]) -> str:
    doc = (wf.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(doc.split()) or f"Run the workflow {wf.name!r}."


def _json(value: Any) -> Any:
    return TypeAdapter(Any).dump_python(value, mode="json")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing argument {exc.args[0]!r}"
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def build_server(tools: WorkflowTools, *, name: str = "tether") -> Any:
    """An `mcp` low-level Server offering `tools`."""
    import mcp_types as types
    from mcp.server.lowlevel import Server

    async def list_tools(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(tools=tools.listing())

    async def call_tool(ctx: Any, params: Any) -> Any:
        info = getattr(getattr(ctx.session, "client_params", None), "client_info", None)
        caller = (ctx.meta or {}).get(CALLER_META)
        data, is_error = await tools.call(params.name, dict(params.arguments or {}),
                                          client=getattr(info, "name", None) or "unknown",
                                          caller_run=caller if isinstance(caller, str) else None)
        text = json.dumps(data, ensure_ascii=False, default=str)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                    structured_content=data, is_error=is_error)

    return Server(name, instructions="Each tool but the tether_* ones runs a durable tether workflow.",
                  on_list_tools=list_tools, on_call_tool=call_tool)


def stdio_streams() -> Any:
    """Claim this process's stdin/stdout for MCP (an async context manager giving the streams).

    Enter it before starting anything else: while it is open, stray output goes to stderr.
    """
    from mcp.server.stdio import stdio_server

    return stdio_server()


async def serve_stdio(server: Any, streams: tuple[Any, Any]) -> None:
    """Serve MCP over the streams of `stdio_streams()` until the client disconnects."""
    read, write = streams
    await server.run(read, write, server.create_initialization_options())


async def serve_http(server: Any, *, host: str = "127.0.0.1", port: int = 8765,
                     ready: asyncio.Event | None = None) -> None:
    """Serve MCP over streamable HTTP at `http://HOST:PORT/mcp` until cancelled."""
    import uvicorn

    app = server.streamable_http_app(host=host)
    web = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on"))
    task = asyncio.ensure_future(web.serve())
    try:
        while not web.started and not task.done():
            await asyncio.sleep(0.02)
        if ready is not None:
            ready.set()
        await task
    finally:
        web.should_exit = True
        await asyncio.gather(task, return_exceptions=True)


__all__ = ["WorkflowTools", "build_server", "input_schema", "serve_http", "serve_stdio", "stdio_streams"]
