"""The `tether` command: parse arguments, call the library, print. No logic of its own.

Each command group lives in its own module here and registers on `app`.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import sys
import traceback

import typer
from rich.markup import escape

from tether.cli._common import app, before_exit, check_environment, err
from tether.errors import TetherError, UsageError

# Each module registers its commands on `app`; `tether --help` lists them in this order.
for _module in ("core", "tasks", "observe", "studio", "keys", "mcp", "schedules", "replay", "deployments"):
    importlib.import_module(f"tether.cli.{_module}")


@app.callback()
def _options(debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks of errors (may also follow the command; or TETHER_DEBUG=1).")) -> None:
    """tether: durable AI workflows on Temporal."""


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear line and a non-zero exit for errors; tracebacks with --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("TETHER_DEBUG") == "1"
    args = (["--debug"] if "--debug" in args else []) + [a for a in args if a != "--debug"]
    if debug:
        os.environ["TETHER_DEBUG"] = "1"
    code: int = 0
    try:
        check_environment()
        app(args=args, prog_name="tether")  # exits via SystemExit; usage errors handled by typer
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        err.print("aborted")
        code = 130
    except TetherError as exc:
        code = _fail(exc, debug, 2 if isinstance(exc, UsageError) else 1)
    except Exception as exc:
        code = _fail(exc, debug, 1, unexpected=True)
    _exit(code)


def _exit(code: int) -> None:
    # Temporal's native runtime keeps threads that may call into Python while the interpreter
    # finalizes, which can abort the process after a successful command; flush what we own
    # (before_exit hooks, logs, output) and leave without finalization.
    for hook in before_exit:
        hook()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _fail(exc: BaseException, debug: bool, code: int, *, unexpected: bool = False) -> int:
    if debug:
        traceback.print_exception(exc)
    prefix = f"{type(exc).__name__}: " if unexpected else ""
    hint = "" if debug or not unexpected else " (run with --debug for the traceback)"
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    err.print(f"[bold red]error:[/] {escape(without_secrets(prefix + message))}{hint}", soft_wrap=True)
    return code


SECRET_ENV = ("TETHER_KEYS", "TETHER_API_TOKEN", "TETHER_API_KEY")
"""Variables whose values are key material or credentials: never quoted in an error line."""
_WORD = re.compile(r"[A-Za-z0-9+/=_\-]{8,}")


def _secret_parts(name: str) -> list[str]:
    raw = os.environ.get(name, "")
    if name == "TETHER_KEYS":  # "ID:KEY,ID:KEY": key ids name keys in messages and are no secret
        return [entry.rpartition(":")[2].strip() for entry in raw.split(",")]
    return re.split(r"[,:\s]+", raw)


def without_secrets(text: str) -> str:
    """`text` with any run of 8+ characters taken from a key or token in the environment redacted.

    Error lines end up in terminals, CI logs and tickets; a message that quotes part of a
    malformed key (`got an entry 'c2VjcmV0…'`) must not carry it there.
    """
    secrets = [v for name in SECRET_ENV for v in _secret_parts(name) if len(v) >= 8]
    if not secrets:
        return text
    return _WORD.sub(lambda m: "[redacted]" if any(m.group(0) in s for s in secrets) else m.group(0), text)
