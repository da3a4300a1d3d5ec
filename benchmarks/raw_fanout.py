"""The fan-out workload written directly with temporalio (the engine's own cost): a workflow of
sequential activities, each one HTTP call to the loopback chat server over a raw connection.
Imports nothing of tether, so the sandbox re-imports only what a plain temporalio app would."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from temporalio import activity, workflow
from temporalio.common import RetryPolicy


def chat_request(url: str, *, close: bool = False) -> bytes:
    """One chat-completion request to `url` (the API root), as bytes on the wire."""
    parts = urlsplit(url)
    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Say OK."}],
                       "temperature": 0.0}).encode()
    head = (f"POST {parts.path}/chat/completions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"{'Connection: close' + chr(13) + chr(10) if close else ''}\r\n").encode()
    return head + body


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> Any:
    """Send `request` and read its JSON reply (HTTP/1.1 with Content-Length)."""
    writer.write(request)
    await writer.drain()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return json.loads(await reader.readexactly(length))


@activity.defn(name="raw_chat")
async def raw_chat(url: str) -> str:
    """POST one chat completion to `url` (the API root) and return the reply's text."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        reply = await exchange(reader, writer, chat_request(url, close=True))
    finally:
        writer.close()
    return str(reply["choices"][0]["message"]["content"])


@workflow.defn(name="bench_raw_fanout")
class BenchRawFanout:
    """`calls` sequential model calls, each an activity."""

    @workflow.run
    async def run(self, url: str, calls: int) -> list[str]:
        out = []
        for _ in range(calls):
            out.append(await workflow.execute_activity(
                raw_chat, url, start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_attempts=3)))
        return out
