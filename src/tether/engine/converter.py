"""The data converter every tether client and worker uses: pydantic-aware JSON payloads,
and failures whose messages and stack traces are encrypted like payloads."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverter,
    PayloadCodec,
    PayloadConverter,
)

from tether.errors import DecryptionFailed, PlaintextRefused

_KEY_ERRORS = {cls.__name__ for cls in (DecryptionFailed, PlaintextRefused)}


ENCODED = "Encoded failure"
"""The message Temporal's converters leave on a failure whose text travels encoded."""
TEXT_BUDGET = 2400
"""Bytes of message and stack trace one failure (its causes included) may carry. The engine
keeps a retried step's last failure only when the whole failure fits 4 KiB (the server's
`limit.mutableStateActivityFailureSize.error`), and stores "Failure exceeds size limit." in its
place otherwise; encrypted, that would hide every word of it."""
MESSAGE_MAX = 1000
"""Bytes of one message kept (the rest is cut, marked)."""
MESSAGES_MAX = 1600
"""Bytes of all the chain's messages kept: stack traces get at least the rest of the budget."""
MAX_CAUSES = 8


class FittedFailureConverter(DefaultFailureConverter):
    """Failures cut to fit what the engine keeps: every message (up to `MESSAGE_MAX`), then the
    stack traces' innermost frames, within `TEXT_BUDGET` for the whole chain of causes."""

    encode = False

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=False)

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        """Convert `exception` (and its causes), cut to fit, encoded when `encode` is set."""
        _PLAIN.to_failure(exception, payload_converter, failure)
        fit(failure)
        if self.encode and not _about_keys(exception):
            _encode(failure, payload_converter)


class EncodedFailureConverter(FittedFailureConverter):
    """Failure messages and stack traces travel as an encoded payload (encrypted by the codec).

    Except a failure about keys themselves (`DecryptionFailed`): it names key ids, never a
    value, and must stay readable by people whose key differs from the failing worker's.
    """

    encode = True


_PLAIN = DefaultFailureConverter()


def fit(failure: Failure) -> None:
    """Cut `failure`'s chain in place to `MAX_CAUSES` links and `TEXT_BUDGET` bytes in all:
    messages first, `MESSAGES_MAX` shared evenly (a short one leaves its share to the others,
    none keeps more than `MESSAGE_MAX`), then stack traces from the innermost cause out (where
    the error began), each keeping its innermost frames."""
    links = _chain(failure)
    if len(links) > MAX_CAUSES:
        links[MAX_CAUSES - 1].ClearField("cause")
        links = links[:MAX_CAUSES]
    plain = [link for link in links if link.message != ENCODED]
    messages = MESSAGES_MAX
    for i, link in enumerate(sorted(plain, key=lambda f: len(f.message.encode()))):
        link.message = _head(link.message, min(MESSAGE_MAX, messages // (len(plain) - i)))
        messages -= len(link.message.encode())
    left = TEXT_BUDGET - (MESSAGES_MAX - messages)
    for link in reversed(links):
        link.stack_trace = _tail(link.stack_trace, left)
        left -= len(link.stack_trace.encode())


def _chain(failure: Failure) -> list[Failure]:
    links = [failure]
    while links[-1].HasField("cause"):
        links.append(links[-1].cause)
    return links


def _head(text: str, limit: int) -> str:
    if len(text.encode()) <= limit:
        return text
    mark = " …(cut)"
    return text.encode()[:max(limit - len(mark.encode()), 0)].decode(errors="ignore") + mark


def _tail(text: str, limit: int) -> str:
    if len(text.encode()) <= limit:
        return text
    mark = "…(outer frames cut)\n"
    room = limit - len(mark.encode())
    if room <= 0:
        return ""
    kept = text.encode()[-room:].decode(errors="ignore")
    newline = kept.find("\n")  # start at a whole line
    return mark + (kept[newline + 1:] if 0 <= newline < len(kept) - 1 else kept)


def _encode(failure: Failure, payload_converter: PayloadConverter) -> None:
    """Move each link's message and stack trace into its encoded attributes (links already
    encoded, e.g. a step's failure passed on by a workflow, stay as they are)."""
    for link in _chain(failure):
        if link.HasField("encoded_attributes") and link.message == ENCODED:
            continue
        link.encoded_attributes.CopyFrom(payload_converter.to_payloads(
            [{"message": link.message, "stack_trace": link.stack_trace}])[0])
        link.message, link.stack_trace = ENCODED, ""


def _about_keys(exc: BaseException) -> bool:
    seen = 0
    link: BaseException | None = exc
    while link is not None and seen < 16:
        if isinstance(link, DecryptionFailed) or getattr(link, "type", None) in _KEY_ERRORS:
            return True
        link, seen = link.__cause__ or link.__context__, seen + 1
    return False


def data_converter(codec: PayloadCodec | None = None) -> DataConverter:
    """The pydantic JSON converter, with `codec` (e.g. encryption) applied to every payload.

    With a codec, failure messages and stack traces travel as an encoded payload too
    (Temporal's `encoded_attributes`): the server stores "Encoded failure" and ciphertext.
    """
    if codec is None:
        return dataclasses.replace(pydantic_data_converter, failure_converter_class=FittedFailureConverter)
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec,
                               failure_converter_class=EncodedFailureConverter)


async def decode_for_display(converter: DataConverter, payloads: Sequence[Payload]) -> list[Any]:
    """Decode payloads to plain JSON values for people to read (no target types needed)."""
    if not payloads:
        return []
    try:
        return await converter.decode(list(payloads))
    except PlaintextRefused:  # an unencrypted payload (e.g. `temporal workflow start`): show it, never run it
        try:
            return converter.payload_converter.from_payloads(list(payloads))
        except Exception as exc:
            return [f"<cannot decode: {exc}>"]
    except Exception as exc:  # a payload this process cannot decode (e.g. another key)
        return [f"<cannot decode: {exc}>"]


async def failure_text(converter: DataConverter, failure: Failure) -> Failure:
    """A copy of `failure` (and its causes) with encoded messages decoded, for people to read.

    A failure this process cannot decode keeps Temporal's placeholder text ("Encoded failure").
    """
    out = Failure()
    out.CopyFrom(failure)
    link: Failure | None = out
    while link is not None:
        if link.HasField("encoded_attributes"):
            link.message, link.stack_trace = await _decoded_attributes(converter, link)
        link = link.cause if link.HasField("cause") else None
    return out


async def _decoded_attributes(converter: DataConverter, failure: Failure) -> tuple[str, str]:
    values = await decode_for_display(converter, [failure.encoded_attributes])
    attrs = values[0] if values else None
    if not isinstance(attrs, dict):
        return failure.message, failure.stack_trace
    message, stack = attrs.get("message"), attrs.get("stack_trace")
    return (message if isinstance(message, str) else failure.message,
            stack if isinstance(stack, str) else failure.stack_trace)
