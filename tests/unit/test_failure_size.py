"""Failures fit what the engine keeps of a retried step (4 KiB), so their words survive.

Over the limit the server stores "Failure exceeds size limit." instead; encrypted, nothing of
the failure would be left to read (`tether.engine.converter.fit`).
"""

from __future__ import annotations

from temporalio.api.failure.v1 import Failure

from tether.engine.codec import Keyring, build_codec, new_key
from tether.engine.converter import MESSAGE_MAX, data_converter
from tether.errors import ModelError

SERVER_LIMIT = 4 * 1024  # limit.mutableStateActivityFailureSize.error


def _deep(n: int, message: str) -> None:
    if n:
        _deeper(n - 1, message)  # two functions: Python folds a frame repeated in a row
    raise ModelError(message, model="m")


def _deeper(n: int, message: str) -> None:
    _deep(n, message)


def _raised(message: str, depth: int = 60, causes: int = 3) -> BaseException:
    """A ModelError raised `depth` frames down, wrapped `causes` times (`raise … from`)."""
    err: BaseException
    try:
        _deep(depth, message)
    except ModelError as inner:
        err = inner
    for i in range(causes):
        try:
            raise RuntimeError(f"wrapped {i}: {message}") from err
        except RuntimeError as outer:
            err = outer
    return err


async def _round_trip(exc: BaseException, *, encrypted: bool) -> tuple[Failure, BaseException]:
    conv = data_converter(build_codec(Keyring([new_key()])) if encrypted else None)
    failure = Failure()
    await conv.encode_failure(exc, failure)
    sent = Failure()
    sent.CopyFrom(failure)
    return sent, await conv.decode_failure(failure)


def _links(exc: BaseException) -> list[tuple[str, str]]:
    """(message, stack trace) of each decoded failure in the chain, outermost first."""
    out: list[tuple[str, str]] = []
    link: BaseException | None = exc
    while link is not None:
        failure = getattr(link, "failure", None)
        out.append((getattr(link, "message", str(link)), failure.stack_trace if failure is not None else ""))
        link = link.__cause__
    return out


async def test_a_long_failure_with_a_deep_stack_fits_and_keeps_its_message_and_innermost_frames() -> None:
    message = "the llama.cpp process crashed (signal SIGILL); " + "x" * 5000
    for encrypted in (True, False):
        sent, back = await _round_trip(_raised(message), encrypted=encrypted)
        assert sent.ByteSize() <= SERVER_LIMIT - 512, (encrypted, sent.ByteSize())
        assert ("SIGILL" in str(sent)) == (not encrypted)  # encrypted on the wire when a key is set
        links = _links(back)
        assert len(links) == 4
        outer, _ = links[0]
        assert outer.startswith("wrapped 2: the llama.cpp process crashed (signal SIGILL)")
        assert outer.endswith("…(cut)") and len(outer.encode()) <= MESSAGE_MAX
        _, innermost_stack = links[-1]  # where the error began: its innermost frames are kept
        assert innermost_stack.startswith("…(outer frames cut)") and "in _deep" in innermost_stack


async def test_a_short_failure_is_left_whole() -> None:
    _, back = await _round_trip(_raised("model refused: HTTP 400", depth=2, causes=1), encrypted=True)
    (outer, outer_stack), (inner, inner_stack) = _links(back)
    assert (outer, inner) == ("wrapped 0: model refused: HTTP 400", "model refused: HTTP 400")
    assert inner_stack.count("in _deep\n") == 3 and "cut" not in outer_stack + inner_stack


async def test_a_chain_of_many_causes_is_cut_to_the_outer_ones() -> None:
    sent, back = await _round_trip(_raised("boom", depth=1, causes=30), encrypted=True)
    links = _links(back)
    assert len(links) == 8 and links[0][0] == "wrapped 29: boom" and links[-1][0] == "wrapped 22: boom"
    assert sent.ByteSize() <= SERVER_LIMIT - 512
