"""The `tether` command: parse arguments, call the library, print. No logic of its own.

Each command group lives in its own module here and registers on `app`.
"""

from __future__ import annotations

import os
import sys
import traceback

import click
import typer

from tether.cli import core as _core  # noqa: F401  (registers commands)
from tether.cli._common import app, err
from tether.errors import TetherError, UsageError


def main(argv: list[str] | None = None) -> None:
    """Entry point: one clear line and a non-zero exit for errors; tracebacks with --debug."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("TETHER_DEBUG") == "1"
    args = [a for a in args if a != "--debug"]
    command = typer.main.get_command(app)
    try:
        command.main(args=args, prog_name="tether", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        err.print("aborted")
        sys.exit(130)
    except TetherError as exc:
        _fail(exc, debug, 2 if isinstance(exc, UsageError) else 1)
    except Exception as exc:
        _fail(exc, debug, 1, unexpected=True)


def _fail(exc: BaseException, debug: bool, code: int, *, unexpected: bool = False) -> None:
    if debug:
        traceback.print_exception(exc)
    prefix = f"{type(exc).__name__}: " if unexpected else ""
    hint = "" if debug or not unexpected else " (run with --debug for the traceback)"
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    err.print(f"[bold red]error:[/] {prefix}{message}{hint}", soft_wrap=True)
    sys.exit(code)
