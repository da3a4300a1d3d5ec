"""`tether serve`: the HTTP API (human tasks: list, read, answer) until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

import typer

from tether.cli._common import (
    CONNECTS,
    HttpsCert,
    HttpsKey,
    StateDir,
    Token,
    TokenFile,
    app,
    connection,
    err,
    tokens_from,
)
from tether.engine.session import open_session


@app.command(rich_help_panel="People", epilog=CONNECTS)
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind; non-loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (Studio's is 7300).")] = 7301,
    token: Token = None, token_file: TokenFile = None,
    https_cert: HttpsCert = None, https_key: HttpsKey = None,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """Serve the HTTP API (human tasks: list, read, answer) until Ctrl-C.

    It has Studio's guards: loopback Host check, no cross-site requests, JSON bodies only
    with `Content-Type: application/json`, and a bearer token (TETHER_API_TOKEN or
    --token-file) required when bound beyond loopback.
    """
    from tether.studio.api import check_binding, tls_options
    from tether.studio.api import serve as serve_api

    tokens = tokens_from(ctx, token, token_file)
    check_binding(host, tokens)  # refuse before touching any server
    tls_options(https_cert, https_key)
    conn = connection()

    async def go() -> None:
        async with open_session(conn, state_dir) as s:
            def ready(url: str) -> None:
                auth = "token required" if tokens else "no token (loopback only)"
                err.print(f"[bold]tether serve[/]  {url}/api/tasks   engine {s.client.connection.address}"
                          f"   {auth}; Ctrl-C stops")

            await serve_api(s.client, host=host, port=port, token=tokens, on_ready=ready,
                            https_cert=https_cert, https_key=https_key)

    with contextlib.suppress(KeyboardInterrupt):  # uvicorn stopped gracefully, then re-raised Ctrl-C
        asyncio.run(go())
    err.print("stopped")
