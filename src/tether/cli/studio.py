"""`tether studio [APP]`: serve Studio (the web app and the JSON API) until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tether import settings
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
from tether.evals import EVALS_DIR
from tether.observe._setup import STORE_ENV, STORE_FILE

if TYPE_CHECKING:
    from tether.engine.client import Client
    from tether.studio.app import Running

StudioStore = Annotated[Path | None, typer.Option(
    "--store", envvar=STORE_ENV, help="The span store file (default: <state dir>/traces.db).")]


@app.command(rich_help_panel="Observe", epilog=CONNECTS)
def studio(
    ctx: typer.Context,
    app_spec: Annotated[str | None, typer.Argument(
        metavar="[APP]", help="Module or .py file whose workflows can be started from Studio.")] = None,
    host: Annotated[str, typer.Option(help="Address to bind; non-loopback needs a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 7300,
    token: Token = None, token_file: TokenFile = None,
    https_cert: HttpsCert = None, https_key: HttpsKey = None,
    temporal_ui: Annotated[str | None, typer.Option(
        envvar="TETHER_TEMPORAL_UI", help="Temporal Web UI base URL, for links (default: the dev server's).")] = None,
    store: StudioStore = None,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """Serve Studio: runs, a run's steps, prompts and decisions, the inbox, metrics, starting runs."""
    from tether.engine.app import load_app
    from tether.engine.session import open_session
    from tether.studio.api import check_binding, tls_options
    from tether.studio.app import serve

    tokens = tokens_from(ctx, token, token_file)
    check_binding(host, tokens)  # refuse before touching any server
    tls_options(https_cert, https_key)
    workflows = load_app(app_spec).workflows if app_spec else {}
    conn = connection()

    async def go() -> None:
        async with open_session(conn, state_dir) as s:
            def ready(url: str) -> None:
                auth = "token login required" if tokens else "no login (loopback only)"
                err.print(f"[bold]tether studio[/]  {url}   engine {s.client.connection.address}   {auth}; "
                          "Ctrl-C stops")

            await serve(s.client, host=host, port=port, token=tokens, workflows=workflows,
                        store=store or state_dir / STORE_FILE, temporal_ui=temporal_ui or s.ui_url,
                        on_ready=ready, https_cert=https_cert, https_key=https_key, evals=state_dir / EVALS_DIR)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(go())
    err.print("stopped")


async def start_for_dev(client: Client, workflows: dict[str, Any], port: int, state_dir: Path,
                        ui_url: str | None) -> tuple[Running | None, str]:
    """Studio in the background of `tether dev` on 127.0.0.1, and the line to print about it.

    A busy port does not stop `tether dev`: Studio is left off and the line says why.
    """
    from tether.errors import ConfigError
    from tether.studio.app import create_studio, start_background

    token = settings.current().api_token
    app_ = create_studio(client, workflows=workflows, store=state_dir / STORE_FILE, temporal_ui=ui_url, token=token,
                         evals=state_dir / EVALS_DIR)
    try:
        running = await start_background(app_, host="127.0.0.1", port=port, token=token)
    except ConfigError as exc:
        return None, f"  Studio off: {exc}"
    return running, f"  Studio {running.url}" + ("   (token login)" if token else "")
