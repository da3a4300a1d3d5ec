"""Step labels people read in `tether show`, live progress and Studio."""

from __future__ import annotations

from tether._labels import step_label
from tether.engine.records import StepRecord
from tether.tools.mcp import CALL_STEP, MCPCall, MCPServer


def test_mcp_calls_name_the_tool_and_server() -> None:
    call = MCPCall(server=MCPServer(transport="stdio", command=["python", "crm.py"]), tool="find_customer")
    rec = StepRecord(kind="step", name=CALL_STEP, id="1", status="completed", input=[call.model_dump(mode="json")])
    assert step_label(rec) == "mcp find_customer (python crm.py)"


def test_plain_steps_keep_their_name() -> None:
    assert step_label(StepRecord(kind="step", name="book", id="2", status="completed", input=[{"x": 1}])) == "book"
