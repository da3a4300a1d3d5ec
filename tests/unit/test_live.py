"""Live events without a server: a streamed reply never lets a sensitive value out, even one
that arrives token by token; event offsets round-trip."""

from __future__ import annotations

from typing import Any

import pytest

from tether import _runtime, _sensitive, settings
from tether.engine.live import Cursor, _Live
from tether.llm import _live

IBAN = "DE89370400440532013000"


class _Runtime:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def streams(self) -> bool:
        return True

    def publish(self, kind: str, fields: dict[str, Any]) -> None:
        self.published.append((kind, fields))


def _stream(pieces: list[str], revealed: list[tuple[str, str, str]], monkeypatch: pytest.MonkeyPatch) -> _Runtime:
    rt = _Runtime()
    monkeypatch.setattr(_runtime, "current", lambda: rt)
    token = _sensitive._attempt.set(revealed)
    try:
        with _live.LiveText("openai:gpt-test") as text:
            for p in pieces:
                text.add(p)
            text.close()
    finally:
        _sensitive._attempt.reset(token)
    return rt


def _sent(rt: _Runtime) -> str:
    return "".join(f["text"] for kind, f in rt.published if kind == "tokens")


def test_a_value_arriving_token_by_token_is_withheld_before_any_part_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    pieces = ["Please ", "pay ", "the ", "invoice ", "to ", "account ", IBAN[:4], IBAN[4:9], IBAN[9:15], IBAN[15:],
              " by ", "Friday."]
    rt = _stream(pieces, [(IBAN, "iban", "vault")], monkeypatch)
    sent = _sent(rt)
    assert IBAN[:4] not in sent and "DE8" not in sent
    assert ("withheld", {"label": "iban"}) in rt.published
    assert "Friday" not in sent  # nothing after the value either


def test_a_reply_without_revealed_values_streams_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    rt = _stream(["The ", "total ", "is ", "42."], [], monkeypatch)
    assert _sent(rt) == "The total is 42." and len(rt.published) == 4


def test_with_revealed_values_the_tail_is_held_back_until_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    words = [f"word{i} " for i in range(40)]
    rt = _stream(words, [(IBAN, "iban", "vault")], monkeypatch)
    assert _sent(rt) == "".join(words)  # all of it in the end, in order
    first = rt.published[0][1]["text"]
    assert len(first) < len("".join(words)) - len(IBAN)  # streamed before the end, minus a held tail


def test_offsets_round_trip_and_bad_ones_are_refused() -> None:
    c = Cursor("0199-run", 17, 2, {"1": _Live(2, 340, 3, 1, 0), "4": _Live(1, 0, 0, 0, 0)})
    back = Cursor.parse(c.encode())
    assert back == c
    with pytest.raises(ValueError, match="not an event offset"):
        Cursor.parse("17")


def test_a_process_streams_at_most_stream_max_calls_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    rt = _Runtime()
    monkeypatch.setattr(_runtime, "current", lambda: rt)
    with settings.override(stream_max=2):
        a, b, c = (_live.LiveText("m") for _ in range(3))
        with a, b, c:
            assert (a.on, b.on, c.on) == (True, True, False)  # the third is not streamed
        with _live.LiveText("m") as d:
            assert d.on  # slots are given back
