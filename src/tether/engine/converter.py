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


class EncodedFailureConverter(DefaultFailureConverter):
    """Failure messages and stack traces travel as an encoded payload (encrypted by the codec).

    Except a failure about keys themselves (`DecryptionFailed`): it names key ids, never a
    value, and must stay readable by people whose key differs from the failing worker's.
    """

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)

    def to_failure(self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure) -> None:
        """Convert `exception`, encoding its message unless it is about payload keys."""
        if _about_keys(exception):
            _PLAIN.to_failure(exception, payload_converter, failure)
        else:
            super().to_failure(exception, payload_converter, failure)


_PLAIN = DefaultFailureConverter()


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
        return pydantic_data_converter
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
