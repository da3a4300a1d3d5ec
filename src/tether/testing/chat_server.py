"""A real HTTP server on loopback that speaks the OpenAI chat-completions API (which Mistral's
also is) and Anthropic's Messages API from a script.

For testing provider code end to end (status codes, headers, malformed output, latency)
without any cloud model: point `openai-compatible:MODEL@<server.url>` at it, or
`MISTRAL_BASE_URL` / `ANTHROPIC_BASE_URL` at `server.root`. It runs an asyncio server in a
background thread, so it serves many slow requests at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """One scripted HTTP response.

    Attributes:
        status: HTTP status (200 for a completion).
        content: The assistant's message text (status 200).
        message: The error message (other statuses), in OpenAI's error format.
        headers: Extra response headers (e.g. `Retry-After`).
        delay: Seconds to wait before responding.
        usage: (prompt tokens, completion tokens) reported for a completion.
        tool_calls: Tool calls in the completion, as `{"id", "name", "arguments"}` dicts.
        chunks: For a streaming request (`"stream": true`), the pieces the content is sent in
            (default: word by word).
        chunk_delay: Seconds between streamed pieces (a reply not streamed comes after all of them).
    """

    status: int = 200
    content: str = ""
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    usage: tuple[int, int] = (12, 6)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    chunks: list[str] | None = None
    chunk_delay: float = 0.0

    def pieces(self) -> list[str]:
        """The pieces a streamed reply sends, joined equal to `content`."""
        if self.chunks is not None:
            return list(self.chunks)
        words: list[str] = re.findall(r"\s*\S+", self.content)
        trailing = self.content[len("".join(words)):]
        return [*words, trailing] if trailing else words


def reply(content: str | dict[str, Any], *, delay: float = 0.0, usage: tuple[int, int] = (12, 6),
          chunks: list[str] | None = None, chunk_delay: float = 0.0) -> Reply:
    """A completion whose message is `content` (a dict is sent as JSON text); streamed in
    `chunks` (default word by word), `chunk_delay` seconds apart, when the request asks to stream."""
    text = content if isinstance(content, str) else json.dumps(content)
    return Reply(content=text, delay=delay, usage=usage, chunks=chunks, chunk_delay=chunk_delay)


def error(status: int, message: str = "", *, retry_after: float | None = None, delay: float = 0.0) -> Reply:
    """An error response, optionally with a `Retry-After` header (seconds)."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return Reply(status=status, message=message or f"scripted error {status}", headers=headers, delay=delay)


@dataclass
class Received:
    """A request the server received: path, headers (lowercase keys), JSON body, arrival time."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


Script = Reply | Callable[[Received], Reply]


class ChatServer:
    """An OpenAI-compatible chat server on 127.0.0.1 that answers from a script.

    Args:
        default: The reply once the script is used up (default: an HTTP 500 saying so).

    Example:
        >>> with ChatServer() as server:
        ...     server.script(error(429, retry_after=1), reply('{"total": 3}'))
        ...     model = server.model("gpt-test")   # "openai-compatible:gpt-test@http://127.0.0.1:PORT/v1"
    """

    def __init__(self, *, default: Script | None = None) -> None:
        self.default = default
        self.requests: list[Received] = []
        self.sent: list[tuple[float, str]] = []
        """Streamed pieces as they were written: (time.monotonic(), text)."""
        self._script: list[Script] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The API root, e.g. "http://127.0.0.1:40123/v1"."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root(self) -> str:
        """The server itself, e.g. "http://127.0.0.1:40123": the base URL Mistral's and
        Anthropic's clients take (they add `/v1/...` themselves)."""
        return f"http://127.0.0.1:{self.port}"

    def model(self, name: str = "test-model") -> str:
        """The tether model string for a model served here."""
        return f"openai-compatible:{name}@{self.url}"

    def script(self, *replies: Script) -> None:
        """Append replies, used one per request in order."""
        with self._lock:
            self._script.extend(replies)

    def start(self) -> ChatServer:
        """Start serving in a background thread; returns once the port is bound."""
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True,
                                        name="tether-chat-server")
        self._thread.start()
        if not ready.wait(10) or not self.port:
            raise RuntimeError("the scripted chat server did not start")
        return self

    def stop(self) -> None:
        """Stop serving (open connections are closed) and wait for the thread to end."""
        if self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        if self._thread is not None:
            self._thread.join(10)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.get_running_loop().call_soon(asyncio.get_running_loop().stop)

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._server = loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", 0,
                                                                    backlog=1024))
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _next(self, received: Received) -> Reply:
        with self._lock:
            item = self._script.pop(0) if self._script else self.default
        if item is None:
            return error(500, "the scripted chat server has no reply left")
        return item(received) if callable(item) else item

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    break
                await self._respond(request, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the server is stopping
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _respond(self, request: tuple[str, str, dict[str, str], bytes],
                       writer: asyncio.StreamWriter) -> None:
        method, path, headers, raw = request
        if method == "GET" and path.rstrip("/").endswith("/models"):
            await _write(writer, 200, {"object": "list", "data": [{"id": "test-model", "object": "model"}]})
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            await _write(writer, 400, _error_body(400, "request body is not JSON"))
            return
        received = Received(path=path, headers=headers, body=body, at=time.monotonic())
        self.requests.append(received)
        r = self._next(received)
        anthropic = path.split("?", 1)[0].rstrip("/").endswith("/messages")  # Anthropic's Messages API
        if r.delay:
            await asyncio.sleep(r.delay)
        if r.status != 200:
            failure = _anthropic_error(r.status, r.message) if anthropic else _error_body(r.status, r.message)
            await _write(writer, r.status, failure, r.headers)
            return
        model = body.get("model", "test-model")
        if body.get("stream"):
            await (self._stream_anthropic(writer, model, r) if anthropic else self._stream(writer, model, r))
            return
        if r.chunk_delay:  # not streamed: the reply comes once the model has written all of it
            await asyncio.sleep(r.chunk_delay * max(0, len(r.pieces()) - 1))
        await _write(writer, 200, _anthropic_message(model, r) if anthropic else _completion(model, r), r.headers)

    @staticmethod
    def _sse_head(writer: asyncio.StreamWriter, r: Reply) -> None:
        """The head of a streamed (server-sent events) response."""
        lines = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream", "Transfer-Encoding: chunked",
                 "Connection: keep-alive", *(f"{k}: {v}" for k, v in r.headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    async def _paced(self, r: Reply, send: Callable[[str], Any]) -> None:
        """Send each piece of `r` at i x chunk_delay from the first, as a model writes at a steady
        pace (one sleep per piece would add each sleep's overshoot; a reply not streamed waits once)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, piece in enumerate(r.pieces()):
            if i and r.chunk_delay:
                await asyncio.sleep(max(0.0, start + i * r.chunk_delay - loop.time()))
            self.sent.append((time.monotonic(), piece))
            await send(piece)

    async def _stream_anthropic(self, writer: asyncio.StreamWriter, model: str, r: Reply) -> None:
        """Server-sent events as Anthropic's Messages API streams them."""
        self._sse_head(writer, r)

        async def send(event: str, data: dict[str, Any]) -> None:
            raw = f"event: {event}\ndata: {json.dumps({'type': event, **data})}\n\n".encode()
            writer.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            await writer.drain()

        start = _anthropic_message(model, r)
        start.update(content=[], stop_reason=None, usage={"input_tokens": r.usage[0], "output_tokens": 0})
        await send("message_start", {"message": start})
        await send("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}})
        await self._paced(r, lambda piece: send("content_block_delta", {
            "index": 0, "delta": {"type": "text_delta", "text": piece}}))
        await send("content_block_stop", {"index": 0})
        for i, c in enumerate(r.tool_calls, start=1):
            await send("content_block_start", {"index": i, "content_block": {
                "type": "tool_use", "id": c["id"], "name": c["name"], "input": {}}})
            await send("content_block_delta", {"index": i, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(c.get("arguments", {}))}})
            await send("content_block_stop", {"index": i})
        await send("message_delta", {"delta": {"stop_reason": "tool_use" if r.tool_calls else "end_turn",
                                               "stop_sequence": None}, "usage": {"output_tokens": r.usage[1]}})
        await send("message_stop", {})
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _stream(self, writer: asyncio.StreamWriter, model: str, r: Reply) -> None:
        """Server-sent events in chat-completion chunks, as OpenAI streams (usage last)."""
        self._sse_head(writer, r)
        head = {"id": f"chatcmpl-{time.monotonic_ns()}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}

        async def send(data: dict[str, Any] | str) -> None:
            raw = ("data: " + (data if isinstance(data, str) else json.dumps({**head, **data})) + "\n\n").encode()
            writer.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
            await writer.drain()

        await send({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        await self._paced(r, lambda piece: send({"choices": [{"index": 0, "delta": {"content": piece},
                                                               "finish_reason": None}]}))
        if r.tool_calls:
            calls = [{"index": i, "id": c["id"], "type": "function",
                      "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
                     for i, c in enumerate(r.tool_calls)]
            await send({"choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}]})
        await send({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls" if r.tool_calls else "stop"}]})
        await send({"choices": [], "usage": {"prompt_tokens": r.usage[0], "completion_tokens": r.usage[1],
                                             "total_tokens": sum(r.usage)}})
        await send("[DONE]")
        writer.write(b"0\r\n\r\n")
        await writer.drain()


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    line = await reader.readline()
    if not line:
        return None
    method, path, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while True:
        h = await reader.readline()
        if h in (b"\r\n", b"\n", b""):
            break
        k, _, v = h.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return method, path, headers, body


async def _write(writer: asyncio.StreamWriter, status: int, body: dict[str, Any],
                 headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", "Content-Type: application/json",
             f"Content-Length: {len(raw)}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + raw)
    await writer.drain()


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable"}


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = {401: "authentication_error", 429: "rate_limit_error"}.get(status, "api_error")
    return {"error": {"message": message, "type": kind, "code": None}}


def _completion(model: str, r: Reply) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{time.monotonic_ns()}", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": _message(r), "finish_reason": "tool_calls" if r.tool_calls else "stop"}],
        "usage": {"prompt_tokens": r.usage[0], "completion_tokens": r.usage[1],
                  "total_tokens": sum(r.usage)},
    }


def _message(r: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": r.content or (None if r.tool_calls else "")}
    if r.tool_calls:
        message["tool_calls"] = [{"id": c["id"], "type": "function", "function": {
            "name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}} for c in r.tool_calls]
    return message


def _anthropic_message(model: str, r: Reply) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": r.content}] if r.content or not r.tool_calls else []
    content += [{"type": "tool_use", "id": c["id"], "name": c["name"], "input": c.get("arguments", {})}
                for c in r.tool_calls]
    return {"id": f"msg_{time.monotonic_ns()}", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": "tool_use" if r.tool_calls else "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": r.usage[0], "output_tokens": r.usage[1]}}


def _anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
            404: "not_found_error", 429: "rate_limit_error", 529: "overloaded_error"}.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}
