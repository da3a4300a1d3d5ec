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
Grace = Annotated[str, typer.Option(
    envvar="TETHER_GRACE", help="On SIGTERM/Ctrl-C, how long steps in flight may take to finish (e.g. 30s).")]


def _use_state_dir(value: Path) -> Path:
    """Make `--state-dir` hold everything of this project's state, here and in child processes.

    The vault and the payload store follow it unless set on their own (`TETHER_VAULT`,
    `TETHER_PAYLOAD_STORE`); the folder is made private to this user (0700).
    """
    from tether.engine.devserver import secure_state_dir

    os.environ["TETHER_STATE_DIR"] = str(value)
    os.environ.setdefault("TETHER_PAYLOAD_STORE", str(value / "payloads"))
    secure_state_dir(value, create=False)  # made (0700) by whatever first writes state into it
    return value


StateDir = Annotated[Path, typer.Option(envvar="TETHER_STATE_DIR", callback=_use_state_dir,
                                        help="Where the embedded engine, the vault and the payload store keep "
                                             "their state.")]
Token = Annotated[str | None, typer.Option(
    envvar="TETHER_API_TOKEN", show_default=False, hidden=True,
    help="Token (prefer TETHER_API_TOKEN or --token-file: a command line is visible to every user).")]
TokenFile = Annotated[Path | None, typer.Option(
    envvar="TETHER_API_TOKEN_FILE", show_default=False,
    help="File of tokens, one per line: NAME:TOKEN (answers record token:NAME) or TOKEN.")]
HttpsCert = Annotated[Path | None, typer.Option(envvar="TETHER_HTTPS_CERT", help="Serve HTTPS: PEM certificate.")]
HttpsKey = Annotated[Path | None, typer.Option(envvar="TETHER_HTTPS_KEY", help="Serve HTTPS: its private key.")]


def check_environment() -> None:
    """Refuse malformed `TETHER_*` settings with one line naming the variable and the fix.

    Raises:
        UsageError: `TETHER_PAYLOAD_THRESHOLD` is set but not a positive whole number of bytes.
    """
    from tether.errors import UsageError

    raw = os.environ.get("TETHER_PAYLOAD_THRESHOLD", "").strip()
    if raw and not (raw.isdigit() and int(raw) > 0):
        raise UsageError(f"TETHER_PAYLOAD_THRESHOLD must be a whole number of bytes above which payloads go to the "
                         f"payload store (e.g. 1048576 for 1 MB), got {raw!r}; fix or unset it")


def tokens_from(ctx: typer.Context, token: str | None, token_file: Path | None) -> dict[str, str]:
    """The server's tokens from `--token-file`, TETHER_API_TOKEN or (deprecated) `--token`.

    Raises:
        ConfigError: The token file cannot be read or is malformed.
    """
    from tether.studio.security import load_tokens

    source = ctx.get_parameter_source("token")  # typer's own click: its enum, compared by member name
    if token and source is not None and source.name == "COMMANDLINE":
        err.print("[yellow]warning:[/] --token is visible to every user of this machine in the process list; "
                  "set TETHER_API_TOKEN or use --token-file instead (--token will be removed)")
    return load_tokens(token, token_file)


def conn_from(  # shared by every command that connects
address: str | None, namespace: str | None, task_queue: str | None,
          tls_cert: str | None = None, tls_key: str | None = None, tls_ca: str | None = None,
          api_key: str | None = None) -> Connection:
    return Connection.from_env(address=address, namespace=namespace, task_queue=task_queue,
                               tls_cert=tls_cert, tls_key=tls_key, tls_ca=tls_ca, api_key=api_key)


