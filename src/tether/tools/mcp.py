"""MCP servers as agent tools, through the official `mcp` SDK (stdio and streamable HTTP).

`stdio(...)` and `http(...)` are declared at import time and used in workflow code:
listing a server's tools and each tool call are durable steps that run on a worker of the
server's zone (a database's MCP server inside the perimeter is only ever reached from
there). On workers, one connection per server is kept open and its tool list is cached.
Secrets are named by environment variable and read on the worker, never put in payloads.

    >>> crm = tether.mcp.stdio("python -m crm_server", zone="crm", env=["CRM_DB"],
    ...                        allow=["find_customer", "update_customer"], prefix="crm_",
    ...                        needs_approval=["update_customer"])
    >>> agent = tether.Agent(model="local:smollm2", tools=[crm, verify_customer])
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, Field

from tether import _registry, _runtime
from tether.durations import Duration, parse_duration
from tether.errors import MCPServerFailed, StepFailed, UsageError
from tether.step import RetryPolicy, StepOptions, check_zone, on_every_queue, step
from tether.tools import _sessions
from tether.tools._tool import Tool, render_result, tool_name

LIST_STEP = "tether.mcp.list_tools"
CALL_STEP = "tether.mcp.call_tool"


class MCPServer(BaseModel):
    """How a worker reaches an MCP server (what crosses the step boundary: no secret values).

    Attributes:
        transport: "stdio" (a command the worker starts) or "http" (streamable HTTP).
        command: The command line (stdio).
        url: The endpoint, e.g. "http://127.0.0.1:8000/mcp" (http).
        env: Names of environment variables passed from the worker to the server process.
        headers_from_env: HTTP header name -> environment variable holding its value.
        cwd: Working folder of the server process.
        startup_timeout: Seconds to wait for the server to answer its first request.
    """

    transport: Literal["stdio", "http"]
    command: list[str] = Field(default_factory=list)
    url: str | None = None
    env: list[str] = Field(default_factory=list)
    headers_from_env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    startup_timeout: float = 30.0

    @property
    def label(self) -> str:
        """The command line or URL, as errors name the server."""
        return shlex.join(self.command) if self.transport == "stdio" else str(self.url)


class MCPToolInfo(BaseModel):
    """A tool as the server lists it."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class MCPCall(BaseModel):
    """One tool call: which server, which tool, the model's arguments."""

    server: MCPServer
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class MCPResult(BaseModel):
    """A tool call's result as text for the model, and whether the tool reported an error."""

    text: str
    is_error: bool = False


@on_every_queue  # served on every queue, routed to the server's zone per call
@step(name=LIST_STEP, attempts=RetryPolicy(max_attempts=3, initial_interval="1s"), timeout="2m")
async def list_mcp_tools(server: MCPServer) -> list[MCPToolInfo]:
    """List an MCP server's tools (cached per worker process)."""
    return await _sessions.list_tools(server)


@on_every_queue
@step(name=CALL_STEP, attempts=RetryPolicy(max_attempts=3, initial_interval="1s"), timeout="5m")
async def call_mcp_tool(call: MCPCall) -> MCPResult:
    """Call one tool of an MCP server; a tool-level error is a result, not a failure."""
    await _sessions.list_tools(call.server)  # cached: the schemas the arguments are checked against
    problem = _sessions.argument_errors(call)
    if problem:
        return MCPResult(text=f"invalid arguments: {problem}", is_error=True)
    return await _sessions.call_tool(call)


class MCPToolset:
    """The tools of one MCP server, for `Agent(tools=[...])`. Create with `stdio` or `http`."""

    def __init__(self, server: MCPServer, *, zone: str | None, allow: Sequence[str] | None, prefix: str,
                 needs_approval: bool | Sequence[str], approver: str | None,
                 approval_timeout: Duration | None, timeout: Duration, attempts: int | RetryPolicy) -> None:
        self.server = server
        self.zone = check_zone(zone) if zone else None
        self.allow = list(allow) if allow is not None else None
        self.prefix = prefix
        self.needs_approval = needs_approval if isinstance(needs_approval, bool) else list(needs_approval)
        self.approver = approver
        self.approval_timeout = approval_timeout
        policy = attempts if isinstance(attempts, RetryPolicy) else RetryPolicy(max_attempts=attempts)
        self._call_options = replace(call_mcp_tool.options, runs_on=self.zone, retry=policy,
                                     timeout=parse_duration(timeout, what="timeout"))
        self._list_options = replace(list_mcp_tools.options, runs_on=self.zone)
        if isinstance(prefix, str) and prefix:
            tool_name(prefix)
        if self.zone:
            _registry.declare_zone(self.zone)

    async def tools(self) -> list[Tool]:
        """Discover the server's tools (a durable step in the server's zone), filtered and prefixed.

        Raises:
            MCPServerFailed: The server could not be started or reached; names its command or URL.
            UsageError: `allow` names a tool the server does not have.
        """
        infos = await self._run(list_mcp_tools, self.server, self._list_options)
        listed = [MCPToolInfo.model_validate(i) for i in infos]
        names = {i.name for i in listed}
        if self.allow is not None:
            missing = [n for n in self.allow if n not in names]
            if missing:
                raise UsageError(f"MCP server {self.server.label!r} has no tool named {', '.join(map(repr, missing))}"
                                 f" (it has: {', '.join(sorted(names)) or 'none'}); fix allow=[...]")
            listed = [i for i in listed if i.name in self.allow]
        return [MCPTool(self, i) for i in listed]

    async def call(self, name: str, arguments: dict[str, Any]) -> MCPResult:
        """Call one of the server's tools (a durable step in its zone)."""
        out = await self._run(call_mcp_tool, MCPCall(server=self.server, tool=name, arguments=arguments),
                              self._call_options)
        return MCPResult.model_validate(out)

    async def _run(self, s: Any, arg: Any, options: StepOptions) -> Any:
        rt = _runtime.current()
        if not rt.in_workflow():
            return await s.fn(arg)
        try:
            return await rt.execute_step(s, [arg], {}, options=options)
        except StepFailed as failed:
            if isinstance(failed.error, MCPServerFailed):
                raise failed.error from None
            raise

    def approval_for(self, name: str) -> bool:
        """Whether calls of the server's tool `name` need a person's approval."""
        if isinstance(self.needs_approval, bool):
            return self.needs_approval
        return name in self.needs_approval or self.prefix + name in self.needs_approval

    def __repr__(self) -> str:
        zone = f" zone={self.zone!r}" if self.zone else ""
        return f"<tether MCP server {self.server.label!r}{zone}>"


class MCPTool(Tool):
    """One tool of an MCP server; each call is a durable step in the server's zone."""

    kind = "extension"

    def __init__(self, toolset: MCPToolset, info: MCPToolInfo) -> None:
        self.toolset = toolset
        self.remote_name = info.name
        super().__init__(toolset.prefix + info.name, description=info.description,
                         parameters=info.input_schema, needs_approval=toolset.approval_for(info.name),
                         approver=toolset.approver, approval_timeout=toolset.approval_timeout)

    async def run(self, checked: Any) -> tuple[str, bool]:
        result = await self.toolset.call(self.remote_name, dict(checked))
        return render_result(result.text), result.is_error


def stdio(command: str | Sequence[str], *, zone: str | None = None, env: Sequence[str] = (),
          cwd: str | None = None, allow: Sequence[str] | None = None, prefix: str = "",
          needs_approval: bool | Sequence[str] = False, approver: str | None = None,
          approval_timeout: Duration | None = None, timeout: Duration = "5m",
          attempts: int | RetryPolicy = 3, startup_timeout: Duration = "30s") -> MCPToolset:
    """An MCP server the worker starts as a process and talks to over stdin/stdout.

    Args:
        command: The command line ("python -m my_server" or a list of arguments).
        zone: Zone whose workers start and call the server (default: the main workers).
        env: Names of environment variables the server process gets from the worker
            (e.g. ["CRM_DB_URL"]); values are read on the worker, never stored in the run.
        cwd: Working folder of the server process.
        allow: Only these tools (the server's own names) are offered to the model.
        prefix: Prepended to every tool name (e.g. "crm_"), to keep names apart.
        needs_approval: True for every tool, or the names of the tools whose calls a
            person must approve first.
        approver: Who approves (shown in `tether tasks`).
        approval_timeout: How long to wait for an approval; no answer refuses the call.
        timeout: Limit on one tool call attempt.
        attempts: Attempts in all per tool call when the server fails (crashes, times out).
        startup_timeout: How long the server may take to answer its first request.

    Example:
        >>> crm = tether.mcp.stdio("python examples/crm_mcp_server.py", zone="crm", prefix="crm_")
    """
    parts = shlex.split(command) if isinstance(command, str) else [str(c) for c in command]
    if not parts:
        raise UsageError("tether.mcp.stdio needs a command, e.g. 'python -m my_server'")
    server = MCPServer(transport="stdio", command=parts, env=_names(env, "env"), cwd=cwd,
                       startup_timeout=_seconds(startup_timeout))
    return MCPToolset(server, zone=zone, allow=allow, prefix=prefix, needs_approval=needs_approval,
                      approver=approver, approval_timeout=approval_timeout, timeout=timeout, attempts=attempts)


def http(url: str, *, headers_from_env: Mapping[str, str] | None = None, zone: str | None = None,
         allow: Sequence[str] | None = None, prefix: str = "", needs_approval: bool | Sequence[str] = False,
         approver: str | None = None, approval_timeout: Duration | None = None, timeout: Duration = "5m",
         attempts: int | RetryPolicy = 3, startup_timeout: Duration = "30s") -> MCPToolset:
    """An MCP server reached over streamable HTTP.

    Args:
        url: The endpoint, e.g. "http://127.0.0.1:8000/mcp".
        headers_from_env: HTTP headers whose values come from the worker's environment, e.g.
            {"Authorization": "CRM_MCP_AUTH"}; only the variable's name is stored in the run.
        zone, allow, prefix, needs_approval, approver, approval_timeout, timeout, attempts,
            startup_timeout: As for `stdio`.

    Example:
        >>> tickets = tether.mcp.http("http://10.0.0.7:8000/mcp", zone="support",
        ...                           headers_from_env={"Authorization": "TICKETS_TOKEN"})
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise UsageError(f"tether.mcp.http needs an http(s) URL, got {url!r}")
    headers = dict(headers_from_env or {})
    for header, var in headers.items():
        _names([var], f"headers_from_env[{header!r}]")
    server = MCPServer(transport="http", url=url, headers_from_env=headers, startup_timeout=_seconds(startup_timeout))
    return MCPToolset(server, zone=zone, allow=allow, prefix=prefix, needs_approval=needs_approval,
                      approver=approver, approval_timeout=approval_timeout, timeout=timeout, attempts=attempts)


def _names(names: Sequence[str], what: str) -> list[str]:
    if isinstance(names, str):
        raise UsageError(f"{what}: expected a list of environment variable names, e.g. ['CRM_DB_URL']")
    out = [str(n) for n in names]
    for n in out:
        if not n or not n.replace("_", "").isalnum():
            raise UsageError(f"{what}: {n!r} is not an environment variable name; pass names, never values")
    return out


def _seconds(value: Duration) -> float:
    return parse_duration(value, what="startup_timeout").total_seconds()


__all__ = ["MCPResult", "MCPServer", "MCPTool", "MCPToolInfo", "MCPToolset", "http", "stdio"]
