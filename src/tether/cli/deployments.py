"""`tether deployments`: make a build current, see which builds still hold pinned runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from tether.cli._common import CONNECTS, StateDir, app, connection, out
from tether.engine.deployments import DeploymentInfo
from tether.engine.session import open_session

deployments_app = typer.Typer(no_args_is_help=True, help="Versioned worker deployments (workers with TETHER_BUILD_ID).")
app.add_typer(deployments_app, name="deployments", rich_help_panel="Setup")

Deployment = Annotated[str | None, typer.Option(
    envvar="TETHER_DEPLOYMENT", help="Deployment name (default: the task queue).")]


@deployments_app.command("promote", epilog=CONNECTS)
def promote(
    build_id: Annotated[str, typer.Argument(metavar="BUILD_ID")],
    deployment: Deployment = None,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """Make BUILD_ID current: new runs start on it; pinned runs stay on their build."""
    conn = connection()

    async def go() -> DeploymentInfo:
        async with open_session(conn, state_dir) as s:
            await s.client.deployments.promote(build_id, deployment=deployment)
            return await s.client.deployments.describe(deployment)

    info = asyncio.run(go())
    out.print(f"build {escape(build_id)} is current in deployment {escape(info.name)}")
    _print_builds(info)


@deployments_app.command("show", epilog=CONNECTS)
def show(
    deployment: Deployment = None,
    state_dir: StateDir = Path(".tether"),
) -> None:
    """The current build and every build's status (a draining build still has pinned runs: keep its workers)."""
    conn = connection()

    async def go() -> DeploymentInfo:
        async with open_session(conn, state_dir) as s:
            return await s.client.deployments.describe(deployment)

    info = asyncio.run(go())
    out.print(f"deployment {escape(info.name)}: current build {escape(info.current or '-')}")
    _print_builds(info)


def _print_builds(info: DeploymentInfo) -> None:
    for b in info.builds:
        out.print(f"  {escape(b.build_id)}  {b.status}" + (f" ({b.drainage})" if b.drainage else ""))
