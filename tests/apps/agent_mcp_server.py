"""A small real MCP server for the agent tests: stdio by default, streamable HTTP with --port.

Over HTTP it requires `Authorization: Bearer <MCP_TEST_TOKEN>` when that variable is set.
Every call is appended to the file named by AGENT_LOG (when set), with this process's pid.
"""

from __future__ import annotations

import json
import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

server = MCPServer("tether-test-crm")


class Customer(BaseModel):
    id: str
    name: str
    plan: str


CUSTOMERS = {"c1": Customer(id="c1", name="Ada Lovelace", plan="gold"),
             "c2": Customer(id="c2", name="Bob Builder", plan="basic")}


def _log(tool: str, **args: object) -> None:
    path = os.environ.get("AGENT_LOG")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"kind": "mcp", "tool": tool, "pid": os.getpid(), "at": time.time(), **args}) + "\n")


@server.tool()
def lookup(customer_id: str) -> Customer:
    """Find a customer by id."""
    _log("lookup", customer_id=customer_id)
    if customer_id not in CUSTOMERS:
        raise ToolError(f"no customer {customer_id}")
    return CUSTOMERS[customer_id]


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    _log("add", a=a, b=b)
    return a + b


@server.tool()
def secret_note() -> str:
    """A tool the tests leave out with an allow-list."""
    return "should not be offered"


def _http(port: int) -> None:
    import uvicorn
    from starlette.middleware.base import BaseHTTPMiddleware
    from starlette.responses import JSONResponse

    app = server.streamable_http_app(host="127.0.0.1")
    token = os.environ.get("MCP_TEST_TOKEN")

    async def check(request, call_next):  # type: ignore[no-untyped-def]
        if token and request.headers.get("authorization") != f"Bearer {token}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return await call_next(request)

    app.add_middleware(BaseHTTPMiddleware, dispatch=check)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    if "--port" in sys.argv:
        _http(int(sys.argv[sys.argv.index("--port") + 1]))
    else:
        server.run()
