"""The JSON HTTP API (Starlette): human tasks today; Studio mounts and extends this app.

Runs in the `tether serve` process (or any ASGI server). Binds to loopback by default;
anywhere else it requires a bearer token (`TETHER_API_TOKEN`). Request bodies are limited.

Routes:
    GET  /api/health                     {"ok": true}
    GET  /api/tasks?assignee=&run=       open tasks, oldest first
    GET  /api/tasks/{task_id}            one task: question, JSON schema, context, status
    POST /api/tasks/{task_id}/answer     body {"answer": ..., "answered_by": "alice"}
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tether.engine.inbox import NoWorker
from tether.errors import ConfigError, InvalidAnswer, TaskClosed, TaskNotFound, TetherError, UsageError
from tether.human import MAX_ANSWER_BYTES, HumanTask

if TYPE_CHECKING:
    from tether.engine.client import Client

TOKEN_ENV = "TETHER_API_TOKEN"
DEFAULT_PORT = 7300


def create_app(client: Client, *, token: str | None = None, max_body: int = MAX_ANSWER_BYTES + 1024,
               routes: Sequence[BaseRoute] | None = None,
               middleware: Sequence[Middleware] | None = None) -> Starlette:
    """The HTTP API as a Starlette app, talking to Temporal through `client`.

    Args:
        client: A connected `tether.Client`.
        token: If set, every request needs `Authorization: Bearer <token>` (else 401).
        max_body: Largest request body in bytes (else 413).
        routes: Extra routes (Studio adds its pages here).
        middleware: Extra middleware, outermost first, run before the token and body checks
            (Studio's login, CSRF and header guard).

    Example:
        >>> app = create_app(client, token=os.environ.get("TETHER_API_TOKEN"))
        >>> uvicorn.run(app, host="127.0.0.1", port=7300)
    """
    api = _Handlers(client, max_body)
    table: list[BaseRoute] = [
        Route("/api/health", api.health, methods=["GET"]),
        Route("/api/tasks", api.list_tasks, methods=["GET"]),
        Route("/api/tasks/{task_id:path}/answer", api.answer, methods=["POST"]),
        Route("/api/tasks/{task_id:path}", api.get_task, methods=["GET"]),
        *(routes or []),
    ]
    stack = [Middleware(_BodyLimit, max_body=max_body)]
    if token:
        stack.insert(0, Middleware(_BearerToken, token=token))
    app = Starlette(routes=table, middleware=[*(middleware or []), *stack],
                    exception_handlers={TetherError: _tether_error})
    app.state.client = client
    return app


class _Handlers:
    def __init__(self, client: Client, max_body: int) -> None:
        self.client = client
        self.max_body = max_body

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

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
        body = await request.body()
        if len(body) > self.max_body:
            return _too_large(len(body), self.max_body)
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return JSONResponse({"error": f"the body is not JSON: {exc}", "field": ""}, status_code=400)
        if not isinstance(data, dict) or "answer" not in data:
            return JSONResponse({"error": "field 'answer': required; send {\"answer\": ..., "
                                 "\"answered_by\": \"NAME\"}", "field": "answer"}, status_code=422)
        by = data.get("answered_by") or request.headers.get("x-tether-user") or "http api"
        try:
            done = await self.client.tasks.answer(task_id, data["answer"], by=str(by)[:200])
        except InvalidAnswer as exc:
            return JSONResponse({"error": str(exc), "field": exc.field}, status_code=422)
        except TaskClosed as exc:
            return _error(409, exc)
        except (TaskNotFound, UsageError) as exc:
            return _error(404, exc)
        except NoWorker as exc:
            return _error(503, exc)
        return JSONResponse(done.model_dump(mode="json"))


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


class _BearerToken:
    """401 unless `Authorization: Bearer <token>` matches (constant-time comparison)."""

    def __init__(self, app: ASGIApp, *, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                response = JSONResponse({"error": f"missing or wrong token: send 'Authorization: "
                                         f"Bearer <{TOKEN_ENV}>'"}, status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _BodyLimit:
    """413 for bodies over the limit, by Content-Length or while streaming."""

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
        await self.app(scope, _limited(receive, self.max_body), send)


def _limited(receive: Receive, limit: int) -> Callable[[], Awaitable[Any]]:
    seen = 0

    async def limited() -> Any:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:  # chunked upload past the limit: cut it short, the handler sees > limit
                return {"type": "http.request", "body": message.get("body", b""), "more_body": False}
        return message

    return limited


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to serve on a non-loopback address without a token.

    Raises:
        ConfigError: `host` is reachable from other machines and no token is set.
    """
    if not is_loopback(host) and not token:
        raise ConfigError(f"serving the API on {host} makes it reachable from other machines; set "
                          f"{TOKEN_ENV} (clients then send 'Authorization: Bearer <token>') or bind "
                          "127.0.0.1")


async def serve(client: Client, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                token: str | None = None, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the API with uvicorn until cancelled.

    Raises:
        ConfigError: A non-loopback `host` without a token.
    """
    import uvicorn

    from tether.engine.devserver import port_is_free

    check_binding(host, token)
    if not port_is_free(host, port):
        raise ConfigError(f"port {port} on {host} is already in use; choose another with --port")
    app = create_app(client, token=token)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           lifespan="off"))
    task = asyncio.ensure_future(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.05)
    if on_ready is not None and server.started:
        on_ready(f"http://{host}:{port}")
    await task
