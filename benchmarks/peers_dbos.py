"""The peers benchmark's workloads written with DBOS Transact 3.x on SQLite (the `dev` extra).

The same work as `llm_workloads.bench_llm_chat` and `workloads.bench_tether`: a DBOS workflow
of sequential steps, each step durable in DBOS's SQLite system database. The model step asks
through `tether.llm.chat` outside any workflow, so both sides use the same provider client
and only the orchestration differs.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig, SetWorkflowID

from benchmarks.llm_workloads import ChatDone, ChatJob
from tether import llm


@DBOS.step()
async def dbos_noop(i: int) -> int:
    """The no-op step: returns its input."""
    return i


@DBOS.workflow()
async def dbos_noop_run(steps: int) -> int:
    """`steps` no-op steps one after the other; returns the sum of their results."""
    total = 0
    for i in range(steps):
        total += await dbos_noop(i)
    return total


@DBOS.step(retries_allowed=True, max_attempts=5)
async def dbos_chat_step(model: str, prompt: str) -> tuple[str, int]:
    """One model call; returns the reply's text and output tokens (DBOS records the tuple)."""
    reply = await llm.chat(prompt, model=model, temperature=0.0)
    return reply.text, reply.usage.output_tokens


@DBOS.workflow()
async def dbos_chat_run(job: ChatJob) -> ChatDone:
    """`job.calls` model calls one after the other; returns the last reply and all output tokens."""
    text, tokens = "", 0
    for _ in range(job.calls):
        text, out = await dbos_chat_step(job.model, job.prompt)
        tokens += out
    return ChatDone(text=text, output_tokens=tokens)


@contextmanager
def dbos_on_sqlite(folder: Path, *, pragmas: Sequence[str] = ()) -> Iterator[None]:
    """DBOS launched on a SQLite system database in `folder`, destroyed on exit (call it in the event loop).

    No Conductor key and OTLP off, so DBOS reaches nothing beyond the file. `pragmas` (e.g. the
    dev server's `journal_mode=wal`) go to every connection, on top of the ones DBOS sets itself.
    """
    url = f"sqlite:///{folder / 'dbos.sqlite'}"
    config: DBOSConfig = {"name": "tether-peers", "system_database_url": url, "log_level": "WARNING",
                          "enable_otlp": False}
    engine = _engine(url, pragmas) if pragmas else None
    if engine is not None:
        config["system_database_engine"] = engine
    loop = asyncio.get_running_loop()
    DBOS(config=config)
    DBOS.launch()
    try:
        yield
    finally:
        DBOS.destroy()
        # DBOS made its executor the loop's default (for asyncio.to_thread) and has shut it down:
        # give the loop a fresh one of asyncio's own kind, or tether's rounds that follow fail.
        loop.set_default_executor(ThreadPoolExecutor())
        if engine is not None:
            engine.dispose()


def _engine(url: str, pragmas: Sequence[str]) -> sa.Engine:
    """The engine DBOS would create for `url` (its pool and per-connection settings), plus `pragmas`."""
    engine = sa.create_engine(url, pool_size=20, max_overflow=0, pool_timeout=30, pool_pre_ping=True)

    @sa.event.listens_for(engine, "connect")
    def configure(conn: Any, _record: Any) -> None:
        conn.isolation_level = "IMMEDIATE"  # as DBOS's own SQLite engine: writers serialise
        for pragma in ("busy_timeout=30000", "foreign_keys=ON", *pragmas):
            conn.execute(f"PRAGMA {pragma}")

    return engine


async def run_many(fn: Any, arg: Any, n: int) -> list[Any]:
    """`n` concurrent runs of the DBOS workflow `fn(arg)`, each with its own id; their results."""
    async def one() -> Any:
        with SetWorkflowID(f"peers-{uuid.uuid4().hex}"):
            return await fn(arg)
    return list(await asyncio.gather(*(one() for _ in range(n))))


_remote: list[str] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            _remote.append(str(address))


def watch_connections() -> list[str]:
    """Record every non-loopback socket connection made from now on (for the process's lifetime)."""
    sys.addaudithook(_audit)
    return _remote
