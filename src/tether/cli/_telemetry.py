"""Telemetry options and setup shared by the commands that run workers (`dev`, `worker`, `run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tether import settings
from tether.cli._common import before_exit
from tether.observe import flush

MetricsPort = Annotated[int | None, typer.Option(
    help="Serve Prometheus metrics on this port (/metrics; 127.0.0.1 unless TETHER_METRICS_HOST says "
    "otherwise).")]
CaptureContent = Annotated[bool | None, typer.Option(
    "--capture-content/--no-capture-content",
    help="Record prompts and responses on model spans (sensitive values are always withheld).")]


def telemetry_setup(role: str, state_dir: Path | None, metrics_port: int | None,
                    capture: bool | None) -> None:
    """Telemetry for a CLI process that runs workers (`dev`, `worker`, `run`): see `setup_process`."""
    from tether.observe import setup_process

    setup_process(role=role, state_dir=state_dir, metrics_port=metrics_port, capture=capture,
                  logs=role != "run" or settings.current().debug)


before_exit.append(flush)  # spans and metrics still buffered when a command ends are exported first
