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
from typer._click.exceptions import NoArgsIsHelpError  # typer vendors click; its errors live there
from typer._click.exceptions import UsageError as ClickUsageError
from typer.exceptions import TyperException

from tether import settings
from tether.cli._common import app, before_exit, err, hoist_global_options
from tether.errors import TetherError, UsageError

# Each module registers its commands on `app`; `tether --help` lists them in this order.
for _module in ("core", "runs", "eval", "tasks", "limits", "serve", "observe", "studio", "keys", "mcp", "schedules",
                "replay", "deployments"):
    importlib.import_module(f"tether.cli.{_module}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear line and a non-zero exit for errors; tracebacks with --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    code: int = 0
    try:
        debug = debug or settings.current().debug  # a malformed TETHER_* variable fails here, in one line
        code = _invoke(hoist_global_options(args))
    except KeyboardInterrupt:
        err.print("aborted")
        code = 130
    except TetherError as exc:
        code = _fail(exc, debug, 2 if isinstance(exc, UsageError) else 1)
    except Exception as exc:
        code = _fail(exc, debug, 1, unexpected=True)
    _exit(code)


def _invoke(args: list[str]) -> int:
    """Run the command; a wrong option or argument is one line naming it and where help is."""
    try:
        result = app(args=args, prog_name="tether", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except NoArgsIsHelpError as exc:
        return exc.exit_code  # the help was printed
    except ClickUsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "tether"
        err.print(f"[bold red]error:[/] {escape(exc.format_message())} (see `{where} --help`)", soft_wrap=True)
        return exc.exit_code
    except TyperException as exc:
        err.print(f"[bold red]error:[/] {escape(exc.format_message())}", soft_wrap=True)
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 1
    return result if isinstance(result, int) else 0


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


_WORD = re.compile(r"[A-Za-z0-9+/=_\-]{8,}")


def _secret_parts(name: str, value: str) -> list[str]:
    if name == "TETHER_KEYS":  # "ID:KEY,ID:KEY": key ids name keys in messages and are no secret
        return [entry.rpartition(":")[2].strip() for entry in value.split(",")]
    return re.split(r"[,:\s]+", value)


def without_secrets(text: str) -> str:
    """`text` with any run of 8+ characters taken from a key or token in the environment redacted.

    Error lines end up in terminals, CI logs and tickets; a message that quotes part of a
    malformed key (`got an entry 'c2VjcmV0…'`) must not carry it there.
    """
    secrets = [v for name, value in settings.secret_values() for v in _secret_parts(name, value) if len(v) >= 8]
    if not secrets:
        return text
    return _WORD.sub(lambda m: "[redacted]" if any(m.group(0) in s for s in secrets) else m.group(0), text)
