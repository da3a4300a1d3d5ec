"""Tool-call turns are readable in traces and Studio: the calls a model made, and their results."""

from __future__ import annotations

import json

from tether.llm._types import Message, ModelReply, ToolCall
from tether.observe import _spans as S
from tether.observe._tree import _messages
from tether.studio.data import _calls_text, _readable

CALLS = [ToolCall(id="c1", name="find_order", arguments={"order_id": "A-1"}),
         ToolCall(id="c2", name="find_customer", arguments={"name": "Ada", "vip": True})]


def test_a_tool_call_turn_is_recorded_as_genai_tool_call_parts() -> None:
    prompt = [Message(role="user", content="Where is my order?"),
              Message(role="assistant", content="", tool_calls=CALLS[:1]),
              Message(role="tool", content='{"status": "shipped"}', tool_call_id="c1", name="find_order")]
    data = json.loads(S.messages_json(prompt))
    assert data[1] == {"role": "assistant", "parts": [
        {"type": "tool_call", "id": "c1", "name": "find_order", "arguments": {"order_id": "A-1"}}]}
    assert data[2]["parts"] == [{"type": "tool_call_response", "id": "c1", "response": '{"status": "shipped"}'}]
    reply = json.loads(S.output_json("", "tool_calls", CALLS))
    assert [p["name"] for p in reply[0]["parts"]] == ["find_order", "find_customer"]


def test_trace_content_shows_the_calls_and_results_as_text() -> None:
    prompt = [Message(role="assistant", content="", tool_calls=CALLS),
              Message(role="tool", content="shipped", tool_call_id="c1", name="find_order")]
    shown = _messages(S.messages_json(prompt))
    assert shown == [("assistant", 'find_order(order_id="A-1") find_customer(name="Ada", vip=true)'),
                     ("tool", "→ shipped")]


def test_studio_shows_the_calls_where_the_reply_has_no_text() -> None:
    reply = ModelReply(model="scripted:x", text="", tool_calls=CALLS, finish_reason="tool_calls")
    assert _calls_text(reply.tool_calls) == 'find_order(order_id="A-1")\nfind_customer(name="Ada", vip=true)'
    turn = _readable(Message(role="assistant", content="", tool_calls=CALLS[:1]))
    assert turn.content == 'find_order(order_id="A-1")'
    said = Message(role="assistant", content="Let me look.", tool_calls=CALLS[:1])
    assert _readable(said).content == "Let me look."


def test_stats_count_attempts_lost_with_their_worker() -> None:
    from tether.observe._stats import _steps
    from tether.observe._store import StoredSpan

    def attempt(call: str, n: int, status: str = "ok") -> StoredSpan:
        return StoredSpan(trace_id="t", span_id=f"{call}-{n}", parent_id=call, name="RunActivity:charge",
                          kind="server", start_ns=0, end_ns=1, status=status, status_message=None,
                          attributes={S.STEP_NAME: "charge", S.STEP_ATTEMPT: n}, events=[])

    # call a: attempt 1 died with its worker (no span), attempt 2 stored; call b: one clean attempt
    (fig,) = _steps([attempt("a", 2), attempt("b", 1)])
    assert (fig.calls, fig.attempts, fig.retried_calls, fig.lost_attempts) == (2, 3, 1, 1)
    assert fig.retry_rate == 0.5


def test_trace_puts_a_note_before_the_step_scheduled_at_the_same_workflow_time() -> None:
    from rich.console import Console

    from tether.observe._store import SpanEvent, StoredSpan
    from tether.observe._tree import TraceView, render

    def span(sid: str, name: str, start: int, parent: str | None = None, events: list[SpanEvent] | None = None,
             attributes: dict[str, object] | None = None) -> StoredSpan:
        return StoredSpan(trace_id="t", span_id=sid, parent_id=parent, name=name, kind="internal", start_ns=start,
                          end_ns=start + 5, status="ok", status_message=None, attributes=attributes or {},
                          events=events or [])

    note = SpanEvent(S.NOTE_EVENT, 20, {"tether.note.message": "amount checked"})
    run = span("r", "run order", 0, events=[note])
    first = span("a", "step check", 10, "r", attributes={S.STEP_NAME: "check"})
    second = span("b", "step book", 20, "r", attributes={S.STEP_NAME: "book"})  # same time as the note
    console = Console(record=True, width=200)
    console.print(render(TraceView("order-1", [run], {"r": [first, second]})))
    text = console.export_text()
    assert text.index("check") < text.index("amount checked") < text.index("book"), text
