"""How a step is named to people (`tether show`, live progress, Studio): built-in steps say
what they did (which model, which MCP tool) rather than their generic step name."""

from __future__ import annotations

from typing import Any

from tether.llm import _report as llm_report
from tether.tools.mcp import CALL_STEP


def step_label(step: Any) -> str:
    """E.g. "llm scripted:a · structured Invoice · repair 1 (…)" or "mcp find_customer (python crm.py)"."""
    if step.name == CALL_STEP and step.input and isinstance(step.input[0], dict):
        call = step.input[0]
        server = call.get("server") or {}
        where = " ".join(server.get("command") or []) or server.get("url") or ""
        return f"mcp {call.get('tool', '?')}" + (f" ({where})" if where else "")
    return llm_report.step_label(step)
