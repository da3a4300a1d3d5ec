"""The provider client tells a worker's pacer when a call's request was written and when its
answer began (real loopback model server): a rate-limited key's call counts from these, not
from assumptions (see `tether.engine.limits.Call`)."""

from __future__ import annotations

import time

from tether import limits
from tether.llm import _providers
from tether.llm._spec import parse_model
from tether.llm._types import Message, ModelCall
from tether.testing import ChatServer, chat_reply


class Marks:
    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []

    def sent(self) -> None:
        self.events.append(("sent", time.monotonic()))

    def answered(self) -> None:
        self.events.append(("answered", time.monotonic()))


async def test_a_model_call_reports_its_request_written_then_its_answer_before_its_reply_is_read() -> None:
    with ChatServer(default=chat_reply("OK", delay=0.3)) as chat:
        model = chat.model("marks")
        call = ModelCall(model=model, messages=[Message(role="user", content="Say OK.")])
        marks = Marks()
        before = time.monotonic()
        with limits.marking(marks):
            reply = await _providers.complete(call, parse_model(model))
        after = time.monotonic()
        # outside a marking block, calls report to no one
        assert (await _providers.complete(call, parse_model(model))).text == "OK"
    assert reply.text == "OK"
    assert [kind for kind, _ in marks.events] == ["sent", "answered"]
    (_, sent), (_, answered) = marks.events
    arrived = chat.requests[0].at  # when the server read the request (same monotonic clock)
    assert before <= sent < arrived + 0.25  # written before the server's 0.3 s answer began
    assert arrived + 0.29 <= answered <= after  # the answer came after the server's delay
