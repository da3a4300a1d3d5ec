"""The Studio web app: one Starlette app serving the pages and the JSON API, and how to run it.

Runs in the `tether studio` / `tether dev` process (or any ASGI server). Pages are
rendered on the server from Jinja templates; the few lines of JavaScript and the
stylesheet are served from `static/` (the app works with no internet). Listens on
127.0.0.1 by default; on any other address the token login is required (and HTTPS is
available with a certificate: the cookies are then `Secure`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tether.errors import ConfigError, TetherError
from tether.human_tasks import MAX_ANSWER_BYTES
from tether.observe._store import SpanStore
from tether.studio import api, inbox, metrics, render, runs, schedules, security, start
from tether.studio import evals as evals_pages
from tether.studio.security import SESSION_TTL, WRONG_TOKEN_DELAY, Sessions
from tether.studio.state import Studio, studio_of

if TYPE_CHECKING:
    from tether.engine.client import Client
    from tether.workflow import Workflow

DEFAULT_PORT = api.DEFAULT_PORT
MAX_BODY = MAX_ANSWER_BYTES + 16 * 1024
"""Largest request body (an answer or a run's input as a form, plus its field names)."""


def create_studio(client: Client, *, workflows: Mapping[str, Workflow[Any, Any]] | None = None,
                  store: str | Path | SpanStore | None = None, temporal_ui: str | None = None,
                  token: str | Mapping[str, str] | None = None, loopback_only: bool = True,
                  max_body: int = MAX_BODY, session_ttl: float = SESSION_TTL,
                  wrong_token_delay: float = WRONG_TOKEN_DELAY, evals: str | Path | None = None) -> Starlette:
    """Studio as a Starlette app: the pages plus the JSON API (`/api/...`) of `tether serve`.

    Args:
        client: A connected `tether.Client`.
        workflows: Workflows that can be started from the start-a-run page (by name).
        store: The local span store file (`.tether/traces.db`) for tool calls, egress blocks
            and metrics; None leaves those parts empty, saying why.
        temporal_ui: Base URL of the Temporal Web UI (`http://127.0.0.1:8233`), for links.
        token: When set (one token, or named tokens), every page and API call needs it: a
            login form sets a session cookie; API clients may send `Authorization: Bearer
            <token>` instead. Answers record the token's name (`studio:NAME`).
        loopback_only: Refuse requests naming a non-loopback Host (set False when serving
            on another address).
        max_body: Largest request body in bytes (else 413).
        session_ttl: Seconds a login lasts.
        wrong_token_delay: Seconds every token check waits after a wrong token (all clients together).
        evals: The folder where `tether eval` keeps its reports (`<state dir>/evals`), for the
            Evaluations pages; None leaves them empty.

    Example:
        >>> app = create_studio(client, workflows=loaded.workflows, store=".tether/traces.db")
        >>> uvicorn.run(app, host="127.0.0.1", port=7300)
    """
    if isinstance(store, str | Path):
        store = SpanStore(store)
    sessions = Sessions(token, ttl=session_ttl, wrong_token_delay=wrong_token_delay)
    studio = Studio(client=client, workflows=dict(workflows or {}), store=store, temporal_ui=temporal_ui,
                    sessions=sessions, evals=Path(evals) if evals is not None else None)
    routes: list[BaseRoute] = [
        Route("/", _home, methods=["GET"]),
        Route("/login", _login, methods=["GET", "POST"]),
        Route("/logout", _logout, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=render.STATIC), name="static"),
        *runs.routes(studio), *inbox.routes(studio), *metrics.routes(studio), *evals_pages.routes(studio),
        *start.routes(studio), *schedules.routes(studio),
    ]
    app = api.create_app(client, max_body=max_body, routes=routes, sessions=sessions, loopback_only=loopback_only)
    app.state.studio = studio
    app.add_exception_handler(TetherError, _tether_error)
    return app


async def _home(request: Request) -> Response:
    return RedirectResponse("/runs", status_code=303)


async def _login(request: Request) -> Response:
    studio = studio_of(request)
    target = security.safe_next(request.query_params.get("next"))
    if studio.sessions.token is None:
        return RedirectResponse(target, status_code=303)
    if request.method == "GET":
        return studio.page(request, "login.html", title="Log in", next=target, error=None)
    got = await studio.form(request)
    if isinstance(got, Response):
        return got
    target = security.safe_next(got.get("next"))
    name = await studio.sessions.verify(got.get("token", ""))  # paced: guesses wait their turn
    if name is None:
        return studio.page(request, "login.html", status=401, title="Log in", next=target,
                           error="That is not the token this Studio was started with (TETHER_API_TOKEN).")
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(security.SESSION_COOKIE, studio.sessions.open(name), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/", max_age=int(studio.sessions.ttl))
    return response


async def _logout(request: Request) -> Response:
    studio = studio_of(request)
    got = await studio.form(request)
    if isinstance(got, Response):
        return got
    studio.sessions.close(request.cookies.get(security.SESSION_COOKIE))
    response = RedirectResponse("/login" if studio.login_required else "/runs", status_code=303)
    response.delete_cookie(security.SESSION_COOKIE, path="/")
    return response


async def _tether_error(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/api/"):
        return api.error_response(500, exc)
    return studio_of(request).page(request, "error.html", status=500, title="Something went wrong",
                                   message=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


# ---- serving ------------------------------------------------------------------------------------


@dataclass
class Running:
    """A Studio served in the background of this process (see `start_background`)."""

    url: str
    task: asyncio.Task[None]
    server: Any

    async def stop(self) -> None:
        """Stop serving and wait for open requests to finish."""
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self.task, 10)


async def start_background(app: Starlette, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                           token: str | Mapping[str, str] | None = None, https_cert: str | Path | None = None,
                           https_key: str | Path | None = None) -> Running:
    """Serve `app` with uvicorn in this event loop (signals stay with the caller).

    Args:
        app: The Studio (or API) app.
        host: Address to bind.
        port: Port to listen on.
        token: The token(s) the app requires (checked: a non-loopback `host` needs one).
        https_cert: PEM certificate to serve HTTPS with (with `https_key`).
        https_key: Its private key.

    Raises:
        ConfigError: A non-loopback `host` without a token, half a TLS setting, or the port is taken.
    """
    import uvicorn

    from tether.engine.devserver import port_is_free

    api.check_binding(host, token)
    tls = api.tls_options(https_cert, https_key)
    if not port_is_free(host, port):
        raise ConfigError(f"port {port} on {host} is already in use; choose another with --port "
                          "(or --studio-port for `tether dev`)")
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                           server_header=False, **tls))  # type: ignore[arg-type]
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]  # caller owns Ctrl-C
    task = asyncio.ensure_future(server.serve())
    while not server.started and not task.done():
        await asyncio.sleep(0.02)
    if task.done():
        task.result()  # raises what stopped it
        raise ConfigError(f"Studio could not listen on {host}:{port}")
    shown = f"[{host}]" if ":" in host else host
    return Running(url=f"{'https' if tls else 'http'}://{shown}:{port}", task=task, server=server)


async def serve(client: Client, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                token: str | Mapping[str, str] | None = None,
                workflows: Mapping[str, Workflow[Any, Any]] | None = None, store: str | Path | None = None,
                temporal_ui: str | None = None, on_ready: Callable[[str], None] | None = None,
                https_cert: str | Path | None = None, https_key: str | Path | None = None,
                evals: str | Path | None = None) -> None:
    """Serve Studio until cancelled (`tether studio`).

    Raises:
        ConfigError: A non-loopback `host` without a token, half a TLS setting, or the port is taken.
    """
    api.check_binding(host, token)
    api.tls_options(https_cert, https_key)  # refuse half a setting before building anything
    app = create_studio(client, workflows=workflows, store=store, temporal_ui=temporal_ui, token=token,
                        loopback_only=security.is_loopback(host), evals=evals)
    running = await start_background(app, host=host, port=port, token=token, https_cert=https_cert,
                                     https_key=https_key)
    if on_ready is not None:
        on_ready(running.url)
    try:
        await running.task
    finally:
        await running.stop()
