"""Serve a tether app's workflows as MCP tools (stdio or streamable HTTP), for `tether mcp serve`.

Runs in the serving process, beside a tether `Client`. Each registered workflow is a tool
whose input schema is the workflow's input type: a call starts a run and returns its
result, or, when the run takes longer than `wait` seconds, its id and status. Three more
tools follow such runs: `tether_run_status`, `tether_list_tasks` (open human tasks) and
`tether_answer_task`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from tether.engine.client import Client, Run
from tether.errors import RunCancelled, RunFailed, TetherError
from tether.tools._tool import tool_name
from tether.workflow import Workflow

STATUS_TOOL = "tether_run_status"
TASKS_TOOL = "tether_list_tasks"
ANSWER_TOOL = "tether_answer_task"

_HELPERS: dict[str, tuple[str, dict[str, Any]]] = {
    STATUS_TOOL: ("Status of a run started by another tool: its result when it has finished, else its "
                  "open human tasks. Optionally wait up to wait_seconds for it to finish.",
                  {"type": "object", "properties": {"run_id": {"type": "string"},
                                                    "wait_seconds": {"type": "number", "minimum": 0, "default": 0}},
                   "required": ["run_id"]}),
    TASKS_TOOL: ("Open human tasks (questions runs wait on), optionally of one run, with the schema "
                 "each answer must match.",
                 {"type": "object", "properties": {"run_id": {"type": "string"}}}),
    ANSWER_TOOL: ("Answer an open human task; the answer must match the task's answer_schema.",
                  {"type": "object", "properties": {"task_id": {"type": "string"}, "answer": {},
                                                    "answered_by": {"type": "string", "default": "mcp"}},
                   "required": ["task_id", "answer"]}),
}


class WorkflowTools:
    """The MCP tools of a set of workflows, and what calling each does.

    Args:
        client: Where runs are started and read.
        workflows: The workflows to offer, by name.
        wait: Seconds a call waits for its run's result before returning the run id instead.
    """

    def __init__(self, client: Client, workflows: Mapping[str, Workflow[Any, Any]], *, wait: float = 30.0) -> None:
        self.client = client
        self.wait = wait
        self.workflows = {tool_name(name): wf for name, wf in sorted(workflows.items())}

    def listing(self) -> list[Any]:
        """The tools, as `mcp` Tool definitions."""
        import mcp_types as types

        tools = [types.Tool(name=name, description=_describe(wf), input_schema=input_schema(wf))
                 for name, wf in self.workflows.items()]
        tools += [types.Tool(name=name, description=text, input_schema=schema)
                  for name, (text, schema) in _HELPERS.items()]
        return tools

    async def call(self, name: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Run a tool; returns (structured result, is_error)."""
        try:
            if name in self.workflows:
                return await self._start(self.workflows[name], arguments), False
            if name == STATUS_TOOL:
                return await self._status(str(arguments["run_id"]), float(arguments.get("wait_seconds") or 0)), False
            if name == TASKS_TOOL:
                return await self._tasks(arguments.get("run_id")), False
            if name == ANSWER_TOOL:
                return await self._answer(arguments), False
        except (TetherError, KeyError, ValueError) as exc:
            return {"error": _one_line(exc)}, True
        return {"error": f"no tool named {name!r}"}, True

    async def _start(self, wf: Workflow[Any, Any], arguments: dict[str, Any]) -> dict[str, Any]:
        value = arguments if _object_input(wf) else arguments.get("input")
        run = await self.client.start(wf, None if wf.input_name is None else value)
        return await self._outcome(run, self.wait)

    async def _status(self, run_id: str, wait: float) -> dict[str, Any]:
        run = self.client.get(run_id)
        detail = await run.describe()
        if detail.status == "running":
            return await self._outcome(run, wait)
        if detail.status == "completed":
            return {"run_id": run_id, "status": "completed", "result": detail.result}
        return {"run_id": run_id, "status": detail.status, "error": detail.error}

    async def _outcome(self, run: Run, wait: float) -> dict[str, Any]:
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

    async def _answer(self, arguments: dict[str, Any]) -> dict[str, Any]:
        task_id = str(arguments["task_id"])
        await self.client.tasks.answer(task_id, arguments["answer"], by=str(arguments.get("answered_by") or "mcp"))
        return {"task_id": task_id, "status": "answered"}


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
        data, is_error = await tools.call(params.name, dict(params.arguments or {}))
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
