"""Shared pieces of the CLI: the typer app, consoles and connection options."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tether.engine.connection import Connection

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="tether: durable AI workflows on Temporal.")
# Piped output is read by scripts and logs: do not fold it to 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

@app.callback()
def _options(allow_plaintext: Annotated[bool, typer.Option(
        "--allow-plaintext", help="Let commands talk to a non-local server without a payload key "
        "(the server then stores inputs and answers unencrypted).")] = False) -> None:
    if allow_plaintext:
        os.environ["TETHER_ALLOW_PLAINTEXT"] = "1"


before_exit: list[Callable[[], None]] = []
"""Callbacks run before the CLI process exits (e.g. flushing telemetry exporters)."""

Address = Annotated[str | None, typer.Option(envvar="TETHER_ADDRESS", help="Temporal frontend host:port.")]
Namespace = Annotated[str | None, typer.Option(envvar="TETHER_NAMESPACE", help="Temporal namespace.")]
Queue = Annotated[str | None, typer.Option("--task-queue", envvar="TETHER_TASK_QUEUE", help="Main task queue.")]
TlsCert = Annotated[str | None, typer.Option(envvar="TETHER_TLS_CERT", help="mTLS client certificate file.")]
TlsKey = Annotated[str | None, typer.Option(envvar="TETHER_TLS_KEY", help="mTLS client key file.")]
TlsCa = Annotated[str | None, typer.Option(envvar="TETHER_TLS_CA", help="CA bundle for the server.")]
ApiKey = Annotated[str | None, typer.Option(envvar="TETHER_API_KEY", help="API key (Temporal Cloud).")]
StateDir = Annotated[Path, typer.Option(envvar="TETHER_STATE_DIR", help="Where the embedded engine keeps its state.")]


def conn_from(  # shared by every command that connects
address: str | None, namespace: str | None, task_queue: str | None,
          tls_cert: str | None = None, tls_key: str | None = None, tls_ca: str | None = None,
          api_key: str | None = None) -> Connection:
    return Connection.from_env(address=address, namespace=namespace, task_queue=task_queue,
                               tls_cert=tls_cert, tls_key=tls_key, tls_ca=tls_ca, api_key=api_key)


