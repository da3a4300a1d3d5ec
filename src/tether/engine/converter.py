"""The data converter every tether client and worker uses: pydantic-aware JSON payloads."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec


def data_converter(codec: PayloadCodec | None = None) -> DataConverter:
    """The pydantic JSON converter, with `codec` (e.g. encryption) applied to every payload."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


async def decode_for_display(converter: DataConverter, payloads: Sequence[Payload]) -> list[Any]:
    """Decode payloads to plain JSON values for people to read (no target types needed)."""
    if not payloads:
        return []
    try:
        return await converter.decode(list(payloads))
    except Exception as exc:  # a payload this process cannot decode (e.g. another key)
        return [f"<cannot decode: {exc}>"]
