"""tether.tools: what agents can call. Steps are tools; MCP servers are toolsets.

Any `@tether.step` given to `tether.Agent(tools=[...])` is a tool (name, description from
its docstring, JSON schema from its type hints); `tether.tool(...)` renames it, describes
it or makes each call wait for a person's approval. `tether.mcp.stdio(...)` and
`tether.mcp.http(...)` offer an MCP server's tools, each call a durable step in the
server's zone. `tether.mcp_server` serves a tether app's workflows as MCP tools.
"""

from tether.llm._types import ToolCall, ToolSpec
from tether.tools import mcp
from tether.tools._tool import StepTool, Tool, Toolset, render_result, tool
from tether.tools.mcp import MCPToolset

__all__ = ["MCPToolset", "StepTool", "Tool", "ToolCall", "ToolSpec", "Toolset", "mcp", "render_result", "tool"]
