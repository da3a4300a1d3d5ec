"""A run taken over by another worker (replayed there) is traced and logged once, not twice."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tether
from tests.apps import obs_flows
from tests.observe.conftest import attrs, children, named, of_run
from tether.observe._logging import JsonFormatter, RunContextFilter


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []
        self.addFilter(RunContextFilter())  # what `tether worker` / `tether dev` install

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, text: str) -> list[logging.LogRecord]:
        return [r for r in self.records if r.getMessage() == text]


@pytest.fixture
def logs() -> Iterator[_Records]:
    handler = _Records()
    loggers = [logging.getLogger(n) for n in ("tether.run", "tether.notes", "tests.obs")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.INFO)
        lg.addHandler(handler)
    yield handler
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


async def test_takeover_by_another_worker_duplicates_no_span_and_no_log_line(
        traced: tether.Client, spans: InMemorySpanExporter, logs: _Records) -> None:
    first = tether.Worker(traced, workflows=[obs_flows.obs_pause])
    await first.__aenter__()
    run = await traced.start(obs_flows.obs_pause, 2.0)
    for _ in range(200):  # until the run sleeps (its first part is done)
        if any(s.kind == "sleep" for s in (await run.describe()).steps):
            break
        await asyncio.sleep(0.05)
    await first.shutdown()  # the run leaves this worker's cache
    assert logs.lines("before the pause"), "the first worker ran the first part"
    async with tether.Worker(traced, workflows=[obs_flows.obs_pause]):  # replays the history, then goes on
        assert await run.result() == 8

    got = of_run(spans, run.id)
    (root,) = named(got, "run obs_pause")
    steps = named(got, "step obs_noop")
    assert len(steps) == 2, "each step once, though the second worker replayed the first"
    assert [attrs(children(got, s)[0])["tether.step.attempt"] for s in steps] == [1, 1]
    # the step ended by the first worker and the one ended by the second hang under the same run span
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in steps)
    assert [e.name for e in root.events] == ["tether.note"]
    for text in ("before the pause", "plain logging before the pause", "after the pause",
                 "note: pausing (seconds=2.0)"):
        assert len(logs.lines(text)) == 1, text
    record = logs.lines("after the pause")[0]
    line = json.loads(JsonFormatter().format(record))
    assert line["run_id"] == run.id and line["workflow"] == "obs_pause"
    assert line["trace_id"] == f"{root.context.trace_id:032x}"
