"""The DBOS side of `benchmarks.peers` does the same work as tether's, on SQLite in the folder it is given."""

from __future__ import annotations

from pathlib import Path

from benchmarks.llm_workloads import ChatDone, ChatJob
from tether.engine.devserver import FAST_PRAGMAS
from tether.testing import ChatServer, chat_reply


async def test_dbos_workloads_return_what_tethers_do(tmp_path: Path) -> None:
    # imported here: importing DBOS takes seconds, and collecting the fast lane imports this module
    from benchmarks.peers_dbos import dbos_chat_run, dbos_noop_run, dbos_on_sqlite, run_many

    with ChatServer(default=chat_reply("OK")) as model:
        job = ChatJob(model=model.model("bench"), prompt="Say OK.", calls=2)
        with dbos_on_sqlite(tmp_path, pragmas=FAST_PRAGMAS):
            done = await run_many(dbos_chat_run, job, 3)
            sums = await run_many(dbos_noop_run, 4, 2)
        assert len(model.requests) == 6  # 3 runs x 2 calls, each call made once
    assert [d.text for d in done] == ["OK"] * 3 and all(isinstance(d, ChatDone) for d in done)
    assert sums == [0 + 1 + 2 + 3] * 2
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".sqlite"] == ["dbos.sqlite"]
