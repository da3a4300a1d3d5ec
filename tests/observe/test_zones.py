"""One trace per run across processes: a step served by a worker process of another zone joins
the trace of the run, under the step span of the workflow that scheduled it."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tether
from tests.apps import obs_flows
from tests.observe.conftest import attrs, named, of_run
from tether.engine.devserver import DevServer
from tether.observe import SpanStore
from tether.testing import run_worker_process


async def test_a_step_in_another_zone_and_process_joins_the_runs_trace(
        traced: tether.Client, tether_server: DevServer, spans: InMemorySpanExporter, tmp_path: Path) -> None:
    store = tmp_path / "zone-traces.db"
    zone_worker = run_worker_process("tests.apps.obs_flows", address=tether_server.address,
                                     task_queue=traced.connection.task_queue, queues=["obszone"],
                                     env={**os.environ, "TETHER_TRACE_STORE": str(store)})
    try:
        async with tether.Worker(traced, workflows=[obs_flows.obs_zoned], steps=[obs_flows.obs_noop]):
            run = await traced.start(obs_flows.obs_zoned, "hello")
            assert await asyncio.wait_for(run.result(), 60) == "zoned:hello-1"
        deadline = time.monotonic() + 20
        while not (remote := SpanStore(store).run_spans(run.id)):  # exported by the other process
            assert time.monotonic() < deadline, "the zone worker exported no span"
            await asyncio.sleep(0.1)
    finally:
        zone_worker.terminate()
        zone_worker.wait(30)

    here = of_run(spans, run.id)
    (root,) = named(here, "run obs_zoned")
    (zone_step,) = named(here, "step obs_zone_step")  # scheduled by workflow code in this process
    assert attrs(zone_step)["tether.step.zone"] == "obszone"
    assert not named(here, "attempt obs_zone_step"), "this process did not run the zoned step"
    (attempt,) = [s for s in remote if s.name == "attempt obs_zone_step"]
    assert attempt.trace_id == f"{root.context.trace_id:032x}"
    assert attempt.parent_id == f"{zone_step.context.span_id:016x}"
    assert attempt.attributes["tether.step.zone"] == "obszone"
    assert attempt.attributes["tether.run_id"] == run.id
