"""Export to the outside: OTLP/HTTP to a real receiver on loopback (decoded with opentelemetry-proto),
the Prometheus endpoint of `tether worker --metrics-port`, and no sensitive value in any of it."""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

import tether
from tests.apps import obs_flows
from tests.observe.conftest import REPO
from tether.engine.devserver import DevServer, free_port
from tether.testing import unique_queue


class Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1: keeps every request body it is sent, by path."""

    def __init__(self) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                receiver.bodies.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[Span]:
        out: list[Span] = []
        for path, body in self.bodies:
            if path == "/v1/traces":
                for rs in ExportTraceServiceRequest.FromString(body).resource_spans:
                    for ss in rs.scope_spans:
                        out.extend(ss.spans)
        return out

    def metric_names(self) -> set[str]:
        names: set[str] = set()
        for path, body in self.bodies:
            if path == "/v1/metrics":
                for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics:
                    for sm in rm.scope_metrics:
                        names.update(m.name for m in sm.metrics)
        return names


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _attrs(span: Span | Span.Event) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


def _worker(tether_server: DevServer, queue: str, receiver: Receiver, metrics_port: int,
            tmp_path: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100",
           "OTEL_METRIC_EXPORT_INTERVAL": "500", "OTEL_SERVICE_NAME": "obs-test-worker",
           "TETHER_VAULT": str(tmp_path / "vault.db"), "TETHER_CAPTURE_CONTENT": "1"}
    cmd = [sys.executable, "-m", "tether", "worker", "tests.apps.obs_flows", "--queues", "main,obsvault,obsother",
           "--address", tether_server.address, "--task-queue", queue, "--allow-plaintext",
           "--metrics-port", str(metrics_port)]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


async def _until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_otlp_export_reaches_a_receiver_and_never_carries_a_sensitive_value(
        tether_server: DevServer, receiver: Receiver, tmp_path: Path) -> None:
    queue, port = unique_queue("obs-otlp"), free_port()
    worker = _worker(tether_server, queue, receiver, port, tmp_path)
    try:
        client = await tether.Client.connect(tether_server.address, task_queue=queue)
        run = await client.start(obs_flows.obs_secret, "c1")
        assert await asyncio.wait_for(run.result(), 90) == "valid"
        await _until(lambda: any(s.name == "run obs_secret" for s in receiver.spans()))
        await _until(lambda: "tether.step.attempts" in receiver.metric_names())
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)

    spans = [s for s in receiver.spans() if _attrs(s).get("tether.run_id") == run.id]
    (root,) = [s for s in spans if s.name == "run obs_secret"]
    assert {s.trace_id for s in spans} == {root.trace_id}
    names = {s.name for s in spans}
    assert {"step obs_vault_check", "attempt obs_vault_check", "chat obs-vault-model", "egress_blocked"} <= names
    (blocked,) = [s for s in spans if s.name == "egress_blocked"]
    assert _attrs(blocked)["tether.egress.zone"] == "obsvault"
    assert _attrs(blocked)["tether.egress.destination"] == "step 'obs_other_zone' in zone 'obsother'"
    model = next(s for s in spans if s.name == "chat obs-vault-model")
    assert "Is <obs_fetch_secret withheld> a valid SSN?" in _attrs(model)["gen_ai.input.messages"]
    first, second = sorted((s for s in spans if s.name == "attempt obs_vault_check"),
                           key=lambda s: s.start_time_unix_nano)
    (error,) = [e for e in first.events if e.name == "exception"]
    assert _attrs(error)["exception.message"] == "first try failed for <obs_fetch_secret withheld>"
    note = next(e for e in second.events if e.name == "tether.note")
    assert _attrs(note)["tether.note.value"] == "<obs_fetch_secret withheld>"
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= receiver.metric_names()
    assert 'tether_step_attempts_total{' in scraped and 'tether_step_name="obs_vault_check"' in scraped

    secret = obs_flows.SECRET.encode()
    assert receiver.bodies and all(secret not in body for _, body in receiver.bodies), "a span or metric carried it"
    assert secret not in scraped.encode()
    assert b"checking" in output and secret not in output, "a log line carried it"
