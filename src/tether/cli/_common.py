"""Shared pieces of the CLI: the typer app and its own options (connection, --debug), consoles, options
several commands take."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from tether import settings
from tether.engine.connection import Connection
from tether.errors import UsageError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="tether: durable AI workflows on Temporal.",
                  epilog="Shortcuts: tether show | cancel | terminate | trace RUN_ID = tether runs show | cancel | "
                         "terminate | trace RUN_ID.")
# Piped output is read by scripts and logs: do not fold it to 80 columns.
out = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

CONNECTION = "Connection (before or after the command)"
"""The help panel of the options every command that talks to a server takes."""
CONNECTS = ("Server: the connection options of `tether --help` (--address, --namespace, --task-queue, "
            "--tls-cert, --tls-key, --tls-ca, --api-key, --allow-plaintext), before or after the command.")
"""The epilog of commands that talk to a server: where their connection options are."""
_Conn = functools.partial(typer.Option, rich_help_panel=CONNECTION, show_default=False)


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option(
        "--debug", help="Show tracebacks of errors (may also follow the command).", envvar="TETHER_DEBUG")] = False,
    address: Annotated[str | None, _Conn(envvar="TETHER_ADDRESS", help="Temporal frontend host:port.")] = None,
    namespace: Annotated[str | None, _Conn(envvar="TETHER_NAMESPACE", help="Temporal namespace.")] = None,
    task_queue: Annotated[str | None, _Conn(
        "--task-queue", envvar="TETHER_TASK_QUEUE", help="Main task queue.")] = None,
    tls_cert: Annotated[str | None, _Conn(envvar="TETHER_TLS_CERT", help="mTLS client certificate file.")] = None,
    tls_key: Annotated[str | None, _Conn(envvar="TETHER_TLS_KEY", help="mTLS client key file.")] = None,
    tls_ca: Annotated[str | None, _Conn(envvar="TETHER_TLS_CA", help="CA bundle for the server.")] = None,
    api_key: Annotated[str | None, _Conn(envvar="TETHER_API_KEY", help="API key (Temporal Cloud).")] = None,
    allow_plaintext: Annotated[bool, _Conn(
        "--allow-plaintext", envvar="TETHER_ALLOW_PLAINTEXT",
        help="Talk to (or run a worker for) a non-local server without a payload key: it then stores inputs, "
             "results and answers unencrypted.")] = False,
) -> None:
    """tether: durable AI workflows on Temporal."""
    given = {"debug": debug, "address": address, "namespace": namespace, "task_queue": task_queue,
             "tls_cert": tls_cert, "tls_key": tls_key, "tls_ca": tls_ca, "api_key": api_key,
             "allow_plaintext": allow_plaintext}
    settings.use(**{name: value for name, value in given.items() if value})


GLOBAL_FLAGS = ("--debug", "--allow-plaintext")
GLOBAL_OPTIONS = ("--address", "--namespace", "--task-queue", "--tls-cert", "--tls-key", "--tls-ca", "--api-key")
"""Options of `tether` itself that may also follow the command (`tether runs list --address …`)."""


def hoist_global_options(args: list[str]) -> list[str]:
    """`args` with `tether`'s own options moved before the command, where typer parses them.

    Raises:
        UsageError: An option that takes a value ends the command line.

    Example:
        >>> hoist_global_options(["runs", "show", "r1", "--address", "h:7233"])
        ['--address', 'h:7233', 'runs', 'show', 'r1']
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":  # everything after it is an argument
            rest += args[i:]
            break
        name, eq, _ = arg.partition("=")
        if arg in GLOBAL_FLAGS or (eq and name in GLOBAL_OPTIONS):
            front.append(arg)
        elif arg in GLOBAL_OPTIONS:
            if i + 1 == len(args):
                raise UsageError(f"{arg} needs a value (see `tether --help`)")
            front += args[i:i + 2]
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


before_exit: list[Callable[[], None]] = []
"""Callbacks run before the CLI process exits (e.g. flushing telemetry exporters)."""

Grace = Annotated[str, typer.Option(
    envvar="TETHER_GRACE", help="On SIGTERM/Ctrl-C, how long steps in flight may take to finish (e.g. 30s).")]


def _use_state_dir(value: Path) -> Path:
    """Make `--state-dir` hold everything of this project's state, here and in child processes.

    The vault and the payload store follow it unless set on their own (`TETHER_VAULT`,
    `TETHER_PAYLOAD_STORE`); the folder is made private to this user (0700).
    """
    from tether.engine.devserver import secure_state_dir

    settings.use(state_dir=value)
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


def connection() -> Connection:
    """The connection the command's options (or `TETHER_*` variables) describe."""
    return Connection.from_env()


def read_input(raw: str | None) -> Any:
    """A command's `--input`: JSON text, or `@file.json`; a bad one is a one-line UsageError."""
    return None if raw is None else read_json(raw, option="--input", what="input")


def read_json(raw: str, *, option: str, what: str, hint: str = "") -> Any:
    """JSON given on the command line as text or `@file.json`; a bad one is a one-line UsageError
    naming `option` (or the file) and where the JSON breaks, followed by `hint`."""
    text, source = raw, option
    if raw.startswith("@"):
        path = Path(raw[1:])
        try:
            text, source = path.read_text(), str(path)
        except OSError as exc:
            raise UsageError(f"cannot read {what} file {str(path)!r}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}{hint}") from None
