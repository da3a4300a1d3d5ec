"""Find or start the engine a command should talk to, and the worker it may need.

Order: an explicitly configured address; else the dev server already running for this
folder; else the embedded dev server, started for the duration of the command.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from tether.engine.client import Client
from tether.engine.codec import dev_codec
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer, running_server


@dataclass
class Session:
    """A connected client, and the dev server this command started (if any)."""

    client: Client
    started_server: DevServer | None
    ui_url: str | None


@contextlib.asynccontextmanager
async def open_session(conn: Connection, state_dir: Path, *, embedded: bool = True,
                       port: int = 7233, ui_port: int | None = None) -> AsyncIterator[Session]:
    """Connect as configured, reusing or starting the embedded engine when none is configured.

    With the embedded engine, payloads are encrypted with the project's dev key
    (`<state_dir>/keys.json`, created on first use) unless keys are configured.
    """
    if conn.explicit or not embedded:
        yield Session(Client(await conn.connect(), conn), None, None)
        return
    conn = replace(conn, codec=conn.codec or dev_codec(state_dir))
    info = running_server(state_dir)
    if info is not None:
        conn = replace(conn, address=info.address)
        yield Session(Client(await conn.connect(), conn), None, info.ui_url)
        return
    server = DevServer(state_dir, port=port, ui_port=ui_port).start()
    try:
        conn = replace(conn, address=server.address)
        yield Session(Client(await conn.connect(), conn), server, server.ui_url)
    finally:
        server.stop()


async def has_workflow_poller(client: Client, queue: str) -> bool:
    """True when some worker has polled the workflow task queue recently."""
    resp = await client.temporal.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(namespace=client.connection.namespace,
                                 task_queue=TaskQueue(name=queue),
                                 task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW))
    return len(resp.pollers) > 0
