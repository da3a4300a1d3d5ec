"""`tether keys`: create, rotate and list payload encryption keys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tether import settings
from tether.cli._common import app, err, out
from tether.engine.codec import (
    KEY_FILE_NAME,
    Keyring,
    default_state_dir,
    ensure_dev_key,
    keyring_from_env,
    new_key,
    write_key_file,
)
from tether.errors import UsageError

keys_app = typer.Typer(no_args_is_help=True, help="Payload encryption keys (AES-256-GCM).")
app.add_typer(keys_app, name="keys", rich_help_panel="Setup")

KeyPath = Annotated[Path | None, typer.Argument(
    metavar="PATH", help="Key file (default: the project's .tether/keys.json).", show_default=False)]


def _path(path: Path | None) -> Path:
    return path if path is not None else default_state_dir() / KEY_FILE_NAME


@keys_app.command("new")
def new(path: KeyPath = None) -> None:
    """Create a key file with one fresh key (readable by its owner only)."""
    p = _path(path)
    if p.exists():
        raise UsageError(f"{p} already exists; use `tether keys rotate {p}` to add a new primary "
                         "key, or choose another path")
    key = new_key()
    write_key_file(p, [key])
    out.print(f"created {p} with key {key.id} (mode 0600)")
    err.print(f"[dim]use it: TETHER_KEY_FILE={p} tether worker APP, or --key-file {p}; "
              "keep a backup: payloads written with it cannot be read without it[/]")


@keys_app.command("rotate")
def rotate(path: KeyPath = None) -> None:
    """Add a new primary key; older keys stay in the file so existing payloads still decrypt."""
    p = _path(path)
    ring = Keyring.from_file(p)
    key = new_key()
    write_key_file(p, [key, *ring.keys])
    out.print(f"{p}: new primary key {key.id}; still decrypts with {', '.join(ring.ids)}")
    err.print("[dim]restart workers, CLI sessions and Studio with the updated file[/]")


@keys_app.command("list")
def list_keys(path: KeyPath = None) -> None:
    """Show the key ids in a key file (never the keys), primary first."""
    p = _path(path)
    ring = Keyring.from_file(p)
    for i, kid in enumerate(ring.ids):
        out.print(f"{kid}{'  (primary)' if i == 0 else ''}")


KeyFile = Annotated[str | None, typer.Option(
    envvar="TETHER_KEY_FILE", help="Payload key file (from `tether keys new`).", show_default=False)]


def use_dev_key(state_dir: Path) -> None:
    """Make sure this process and its children use a payload key; create the dev key if none is set.

    Sets the `key_file` setting, so zone workers spawned by `tether dev` share the key.
    """
    configured = settings.current()
    if configured.keys or configured.key_file:
        keyring_from_env()  # a configured key source that is broken fails now, in one line
        return
    settings.use(key_file=str(ensure_dev_key(state_dir)))
