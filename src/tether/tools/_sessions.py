"""Connections to MCP servers, held open per worker process (one per server and event loop).

Runs on workers, inside the MCP steps. A background task owns each `mcp.Client` (the SDK's
transports live in task groups); step attempts share it. A connection that breaks is
dropped, so the step's retry opens a new one. Tool lists are cached per process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import weakref
from typing import TYPE_CHECKING, Any

from tether.errors import ConfigError, MCPServerFailed, TetherError
from tether.workflow import run_id

if TYPE_CHECKING:
    from tether.tools.mcp import MCPCall, MCPResult, MCPServer, MCPToolInfo

_tool_lists: dict[str, list[MCPToolInfo]] = {}
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Connection]] = weakref.WeakKeyDictionary()


class ToolCallFailed(TetherError):
    """The connection to an MCP server broke during a call (retried by the step's policy)."""


class _Connection:
    """One open session with a server, owned by a background task."""

    def __init__(self, server: MCPServer) -> None:
        self.server = server
        self.client: Any = None
        self.failure: BaseException | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        # the server's stderr, kept for the life of the connection (quoted if it fails to start)
        self._errlog = tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        self._task = asyncio.ensure_future(self._hold())

    async def _hold(self) -> None:
        from mcp import Client

        try:
            target = _target(self.server, self._errlog)
            async with Client(target, read_timeout_seconds=self.server.startup_timeout) as client:
                self.client = client
                self._ready.set()
                await self._stop.wait()
        except BaseException as exc:  # startup failed, or the server went away
            self.failure = exc
        finally:
            self.client = None
            self._ready.set()

    async def ready(self) -> Any:
        """The connected client; raises `MCPServerFailed` if the server did not start."""
        try:
            await asyncio.wait_for(self._ready.wait(), self.server.startup_timeout + 5)
        except TimeoutError:
            self.close()
            raise _failed(self.server, "it did not answer within its startup_timeout", self.stderr()) from None
        if self.client is None:
            raise _failed(self.server, _reason(self.failure), self.stderr())
        return self.client

    @property
    def alive(self) -> bool:
        return not self._task.done()

    def stderr(self) -> str:
        with contextlib.suppress(Exception):
            self._errlog.flush()
            self._errlog.seek(0)
            lines = [ln for ln in self._errlog.read().splitlines() if ln.strip()]
            return " | ".join(lines[-3:])[-400:]
        return ""

    def close(self) -> None:
        self._stop.set()


def _target(server: MCPServer, errlog: Any) -> Any:
    if server.transport == "stdio":
        from mcp import StdioServerParameters, stdio_client

        env = {name: _env(server, name) for name in server.env}
        params = StdioServerParameters(command=server.command[0], args=server.command[1:], env=env, cwd=server.cwd)
        return stdio_client(params, errlog=errlog)  # the server's stderr, quoted when it fails to start
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {h: _env(server, var) for h, var in server.headers_from_env.items()}
    return streamable_http_client(str(server.url), http_client=create_mcp_http_client(headers=headers))


def _env(server: MCPServer, name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(f"the environment variable {name} it needs is not set on this worker; export it "
                          "where the server's zone runs")
    return value


def _reason(exc: BaseException | None) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, FileNotFoundError):
        return "command not found"
    if isinstance(exc, PermissionError):
        return "command is not executable"
    if isinstance(exc, ConfigError):
        return str(exc)
    text = str(exc) if exc is not None else ""
    if "Connection closed" in text:
        return "it exited before answering"
    name = type(exc).__name__ if exc is not None else "error"
    return f"{name}: {text}" if text else name


def _failed(server: MCPServer, reason: str, stderr: str) -> MCPServerFailed:
    what = "failed to start" if server.transport == "stdio" else "could not be reached"
    tail = f" (stderr: {stderr})" if stderr else ""
    err = MCPServerFailed(f"MCP server {server.label!r} {what}: {reason}{tail}", server=server.label)
    if server.transport == "http":
        err.retryable = True  # a remote server may come back; retried per the step's policy
    return err


async def client_for(server: MCPServer) -> Any:
    """An open client for `server`, reusing this process's connection when it is still alive."""
    key = server.model_dump_json()
    pool = _pools.setdefault(asyncio.get_running_loop(), {})
    conn = pool.get(key)
    if conn is None or not conn.alive:
        conn = pool[key] = _Connection(server)
    try:
        return await conn.ready()
    except MCPServerFailed:
        pool.pop(key, None)
        raise


def _drop(server: MCPServer) -> None:
    pool = _pools.get(asyncio.get_running_loop(), {})
    conn = pool.pop(server.model_dump_json(), None)
    if conn is not None:
        conn.close()


async def list_tools(server: MCPServer) -> list[MCPToolInfo]:
    """The server's tools (listed once per process)."""
    from tether.tools.mcp import MCPToolInfo

    key = server.model_dump_json()
    if key not in _tool_lists:
        client = await client_for(server)
        try:
            listed = await client.list_tools()
        except Exception as exc:
            _drop(server)
            raise ToolCallFailed(f"listing the tools of MCP server {server.label!r} failed: {_reason(exc)}") from None
        _tool_lists[key] = [MCPToolInfo(name=t.name, description=t.description or "",
                                        input_schema=t.input_schema) for t in listed.tools]
    return list(_tool_lists[key])


async def call_tool(call: MCPCall) -> MCPResult:
    """Call a tool; a tool-level error (`isError`) is a result the model sees, not a failure."""
    from tether.tools.mcp import MCPResult

    client = await client_for(call.server)
    try:
        result = await client.call_tool(call.tool, call.arguments, meta=_caller_meta())
    except Exception as exc:
        if not _is_protocol_error(exc):
            _drop(call.server)
            raise ToolCallFailed(f"calling {call.tool!r} on MCP server {call.server.label!r} failed: "
                                 f"{_reason(exc)}") from None
        return MCPResult(text=f"error: {exc}", is_error=True)
    return MCPResult(text=_text(result), is_error=bool(result.is_error))


def _caller_meta() -> Any:
    """`_meta` naming the calling run, so a tether MCP server can refuse to let it answer its own tasks."""
    current = run_id()
    return {"tether/run_id": current} if current else None


def _is_protocol_error(exc: Exception) -> bool:
    from mcp import MCPError

    return isinstance(exc, MCPError) and "Connection closed" not in str(exc)


def _text(result: Any) -> str:
    data = result.structured_content
    if data is not None and not result.is_error:
        if isinstance(data, dict) and list(data) == ["result"]:  # a plain value, wrapped by the server
            data = data["result"]
        return data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    parts = [getattr(c, "text", None) or f"<{getattr(c, 'type', 'content')}>" for c in result.content]
    return "\n".join(parts)


def argument_errors(call: MCPCall) -> str:
    """Why the arguments do not match the tool's listed schema ("" when they do, or when unknown)."""
    listed = _tool_lists.get(call.server.model_dump_json())
    schema = next((t.input_schema for t in listed or [] if t.name == call.tool), None)
    if schema is None:
        return ""
    try:
        from jsonschema import Draft202012Validator
    except ImportError:  # the server validates them itself
        return ""
    errors = sorted(Draft202012Validator(schema).iter_errors(call.arguments), key=lambda e: list(e.path))
    lines = [f"{'.'.join(map(str, e.path)) or 'arguments'}: {e.message}" for e in errors[:5]]
    return "; ".join(lines)
