"""The JSON HTTP API (Starlette): human tasks today; Studio mounts and extends this app.

Runs in the `tether serve` process (or any ASGI server), behind Studio's guards
(`security.Guard`): loopback Host check, cross-site refusal, and a bearer token
(`TETHER_API_TOKEN` or a token file) required anywhere but loopback. Request bodies are
limited; JSON bodies must say `Content-Type: application/json`.

Routes:
    GET  /api/health                     {"ok": true}
    GET  /api/runs/{run_id}/events       the run's events as Server-Sent Events (`Run.events()`);
                                         resumes after `Last-Event-ID` (or `?after=OFFSET`)
    GET  /api/tasks?assignee=&run=       open tasks, oldest first
    GET  /api/tasks/{task_id}            one task: question, JSON schema, context, status
    POST /api/tasks/{task_id}/answer     body {"answer": ..., "on_behalf_of": "alice"}

An answer records who sent it as `answered_by` (`token:NAME` for a bearer token,
`local:USER` on loopback without a token); a name given in the body (`on_behalf_of`, or
the older `answered_by`) or the `X-Tether-User` header is kept apart as `claimed_by`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.errors import (
    ConfigError,
    InvalidAnswer,
    NoWorker,
    RunNotFound,
    RunStuck,
    TaskClosed,
    TaskNotFound,
    TetherError,
    UsageError,
)
from tether.human_tasks import MAX_ANSWER_BYTES, HumanTask
from tether.studio.security import Guard, Sessions, identity, is_loopback

if TYPE_CHECKING:
    from tether.engine.client import Client
    from tether.engine.live import RunEvent

TOKEN_ENV = "TETHER_API_TOKEN"
DEFAULT_PORT = 7300


def create_app(client: Client, *, token: str | Mapping[str, str] | None = None,
               max_body: int = MAX_ANSWER_BYTES + 1024, routes: Sequence[BaseRoute] | None = None,
               middleware: Sequence[Middleware] | None = None, sessions: Sessions | None = None,
               loopback_only: bool = True) -> Starlette:
    """The HTTP API as a Starlette app, talking to Temporal through `client`.

    Args:
        client: A connected `tether.Client`.
        token: If set (one token, or named tokens), every request needs
            `Authorization: Bearer <token>` (else 401).
        max_body: Largest request body in bytes (else 413, chunked uploads included).
        routes: Extra routes (Studio adds its pages here).
        middleware: Extra middleware, run after the guard and before the body limit.
        sessions: The tokens and login sessions (Studio's); default: built from `token`.
        loopback_only: Refuse requests naming a non-loopback Host (DNS rebinding); set
            False when serving on another address.

    Example:
        >>> app = create_app(client, token=settings.current().api_token)
        >>> uvicorn.run(app, host="127.0.0.1", port=7300)
    """
    api = _Handlers(client, max_body)
    table: list[BaseRoute] = [
        Route("/api/health", api.health, methods=["GET"]),
        Route("/api/runs/{run_id:path}/events", api.run_events, methods=["GET"]),
        Route("/api/tasks", api.list_tasks, methods=["GET"]),
        Route("/api/tasks/{task_id:path}/answer", api.answer, methods=["POST"]),
        Route("/api/tasks/{task_id:path}", api.get_task, methods=["GET"]),
        *(routes or []),
    ]
    guard = Middleware(Guard, sessions=sessions or Sessions(token), loopback_only=loopback_only)
    stack = [guard, *(middleware or []), Middleware(_BodyLimit, max_body=max_body)]
    app = Starlette(routes=table, middleware=stack, exception_handlers={TetherError: _tether_error})
    app.state.client = client
    return app


def _sse(ev: RunEvent) -> bytes:
    payload = to_jsonable_python(dataclasses.asdict(ev), fallback=str)
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"id: {ev.offset}\nevent: {ev.kind}\ndata: {data}\n\n".encode()


class _Handlers:
    def __init__(self, client: Client, max_body: int) -> None:
        self.client = client
        self.max_body = max_body

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    async def run_events(self, request: Request) -> Response:
        """The run's events as Server-Sent Events: `id:` is the event's offset (a reconnecting
        EventSource resumes after it), `event:` its kind, `data:` the event as JSON. The
        stream ends after the run's last event."""
        after = request.headers.get("last-event-id") or request.query_params.get("after") or None
        events = self.client.get(request.path_params["run_id"]).events(after=after).__aiter__()
        try:  # the first event, or the reason there is none, before the response starts
            first: RunEvent | None = await events.__anext__()
        except StopAsyncIteration:
            first = None
        except RunNotFound as exc:
            return _error(404, exc)
        except UsageError as exc:
            return _error(400, exc)

        async def stream() -> AsyncIterator[bytes]:
            if first is None:
                return
            yield _sse(first)
            async for ev in events:
                yield _sse(ev)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def list_tasks(self, request: Request) -> Response:
        q = request.query_params
        tasks = await self.client.tasks.list(assignee=q.get("assignee") or None,
                                             run_id=q.get("run") or None)
        return JSONResponse({"tasks": [_summary(t) for t in tasks], "unreadable_runs": tasks.unreadable})

    async def get_task(self, request: Request) -> Response:
        try:
            task = await self.client.tasks.get(request.path_params["task_id"])
        except (TaskNotFound, UsageError) as exc:
            return _error(404, exc)
        return JSONResponse(task.model_dump(mode="json"))

    async def answer(self, request: Request) -> Response:
        task_id = request.path_params["task_id"]
        if not _is_json(request):
            return JSONResponse({"error": "send the answer as JSON with 'Content-Type: application/json' (got "
                                 f"{request.headers.get('content-type') or 'no content type'!r})",
                                 "field": ""}, status_code=415)
        body = await request.body()
        if len(body) > self.max_body:
            return _too_large(len(body), self.max_body)
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return JSONResponse({"error": f"the body is not JSON: {exc}", "field": ""}, status_code=400)
        if not isinstance(data, dict) or "answer" not in data:
            return JSONResponse({"error": "field 'answer': required; send {\"answer\": ..., "
                                 "\"on_behalf_of\": \"NAME\"}", "field": "answer"}, status_code=422)
        claimed = data.get("on_behalf_of") or data.get("answered_by") or request.headers.get("x-tether-user")
        try:
            done = await self.client.tasks.answer(task_id, data["answer"], by=identity(request),
                                                  claimed_by=str(claimed)[:200] if claimed else None)
        except InvalidAnswer as exc:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=422)
        except TaskClosed as exc:
            return _error(409, exc)
        except (TaskNotFound, UsageError) as exc:
            return _error(404, exc)
        except (NoWorker, RunStuck) as exc:
            return _error(503, exc)
        return JSONResponse(done.model_dump(mode="json"))


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json"


def _summary(task: HumanTask) -> dict[str, Any]:
    data = task.model_dump(mode="json", exclude={"answer_schema", "context"})
    return data


async def _tether_error(request: Request, exc: Exception) -> Response:
    # e.g. the server is unreachable or a memo cannot be decrypted here: one clear line
    return _error(500, exc)


def _error(status: int, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=status)


def error_response(status: int, exc: Exception) -> Response:
    """The API's JSON error reply: `{"error": "<one line>"}` with `status`."""
    return _error(status, exc)


def _too_large(size: int | None, limit: int) -> Response:
    got = f"{size} bytes" if size is not None else "too large"
    return JSONResponse({"error": f"field 'answer': the request body is {got}; the limit is {limit} bytes",
                         "field": "answer"}, status_code=413)


class _BodyLimit:
    """413 for bodies over the limit, by Content-Length or once read.

    Every body is read (up to the limit) before the handler sees it, whatever the headers
    say: a form sent chunked, or with a Content-Length beside `Transfer-Encoding: chunked`,
    is refused whole rather than cut short or let through.
    """

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _too_large(int(length), self.max_body)(scope, receive, send)
            return
        try:
            body = await _read_body(receive, self.max_body)
        except _Disconnected:
            return  # half a body is never handled as a whole one, and nobody waits for a reply
        if body is None:
            await _too_large(None, self.max_body)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


class _Disconnected(Exception):
    """The client went away before sending its whole body."""


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` bytes.

    Raises:
        _Disconnected: The client went away first.
    """
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def check_binding(host: str, token: str | Mapping[str, str] | None) -> None:
    """Refuse to serve on a non-loopback address without a token.

    Raises:
        ConfigError: `host` is reachable from other machines and no token is set.
    """
    if not is_loopback(host) and not token:
        raise ConfigError(f"serving on {host} makes it reachable from other machines; set "
                          f"{TOKEN_ENV} or --token-file (clients then send 'Authorization: Bearer <token>') "
                          "or bind 127.0.0.1")


def tls_options(cert: str | Path | None, key: str | Path | None) -> dict[str, str]:
    """uvicorn's TLS settings for an HTTPS certificate and its key (both or neither).

    Raises:
        ConfigError: Only one of them is given, or a file is missing.
    """
    if cert is None and key is None:
        return {}
    if cert is None or key is None:
        raise ConfigError("HTTPS needs both --https-cert and --https-key (a PEM certificate and its private key)")
    for what, path in (("--https-cert", cert), ("--https-key", key)):
        if not Path(path).is_file():
            raise ConfigError(f"{what} {str(path)!r}: no such file")
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


async def serve(client: Client, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                token: str | Mapping[str, str] | None = None, on_ready: Callable[[str], None] | None = None,
                https_cert: str | Path | None = None, https_key: str | Path | None = None) -> None:
    """Serve the API with uvicorn until cancelled, behind Studio's guards.

    Raises:
        ConfigError: A non-loopback `host` without a token, or the port is taken.
    """
    import uvicorn

    from tether.engine.devserver import port_is_free

    check_binding(host, token)
    tls = tls_options(https_cert, https_key)
    if not port_is_free(host, port):
        raise ConfigError(f"port {port} on {host} is already in use; choose another with --port")
    app = create_app(client, token=token, loopback_only=is_loopback(host))
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="off", server_header=False, **tls))  # type: ignore[arg-type]
    task = asyncio.ensure_future(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    shown = f"[{host}]" if ":" in host else host
    if on_ready is not None and server.started:
        on_ready(f"{'https' if tls else 'http'}://{shown}:{port}")
    await task

