"""Acceptance: the claims example over 20 planted SSNs and medical phrases, zones in separate
worker processes, a persistent dev server, a loopback stand-in for the cloud model and a
loopback OTLP collector receiving every span (content capture on).

Afterwards no planted value occurs in the Temporal database files, in any exported span
(OTLP requests and the local span store) or in any request the model server received;
the vault file holds every one of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import tether
from tether.engine.app import load_app
from tether.engine.codec import FileStore, Keyring, build_codec, new_key, write_key_file
from tether.engine.devserver import DevServer
from tether.testing import ChatServer, Received, Reply, chat_reply, run_worker_process, unique_queue

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = str(REPO / "examples" / "claims.py")
CONDITIONS = [
    "idiopathic pulmonary fibrosis", "relapsing-remitting multiple sclerosis", "paroxysmal atrial fibrillation",
    "stage III chronic kidney disease", "bipolar II disorder", "hereditary hemochromatosis",
    "systemic lupus erythematosus", "ankylosing spondylitis", "primary biliary cholangitis",
    "post-traumatic stress disorder", "Hashimoto thyroiditis", "bilateral keratoconus",
    "early-onset Alzheimer disease", "Crohn disease of the terminal ileum", "HIV-1 infection on antiretrovirals",
    "schizoaffective disorder", "type 1 diabetes with retinopathy", "metastatic melanoma",
    "alcohol use disorder in remission", "congenital long QT syndrome",
]


def _planted(rng: random.Random) -> list[tuple[str, str, str, int, str]]:
    ssns = {f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}" for _ in range(40)}
    rows = []
    for i, (ssn, condition) in enumerate(zip(sorted(ssns), CONDITIONS, strict=False)):
        notes = f"Follow-up visit. Known {condition}. Admitted for observation after chest pain."
        rows.append((f"C-{i:04d}", f"Customer {i}", ssn, rng.randint(1, 15), notes))
    assert len(rows) == 20
    return rows


def _decide(received: Received) -> Reply:
    return chat_reply({"approve": True, "payout": 250.0, "reason": "covered by the policy"})


@pytest.fixture
def cloud() -> Iterator[ChatServer]:
    with ChatServer(default=_decide) as server:
        yield server


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that keeps the raw bytes of every export it receives."""

    received: list[bytes]

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers.get("content-length", "0"))))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []
    handler = type("Handler", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        thread.join(5)


def _stop(proc: subprocess.Popen[bytes]) -> str:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return (proc.stdout.read() if proc.stdout else b"").decode(errors="replace")


def _needles(rows: list[tuple[str, str, str, int, str]]) -> list[bytes]:
    out = []
    for _, _, ssn, _, notes in rows:
        out += [ssn.encode(), ssn.replace("-", "").encode()]
        out.append(next(c for c in CONDITIONS if c in notes).encode())
    return out


async def test_claims_keep_every_planted_value_inside_the_vault(tmp_path: Path, cloud: ChatServer,
                                                                collector: tuple[str, list[bytes]]) -> None:
    rows = _planted(random.Random())
    needles = _needles(rows)
    claims = load_app(EXAMPLE).module
    claims.seed(str(tmp_path / "private.db"), rows)
    key = new_key()
    write_key_file(tmp_path / "keys.json", [key])
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TETHER_", "CLAIMS_"))} | {
        "TETHER_KEY_FILE": str(tmp_path / "keys.json"), "TETHER_STATE_DIR": str(tmp_path / "state"),
        "TETHER_PAYLOAD_STORE": str(tmp_path / "payloads"), "PYTHONPATH": str(REPO),
        "CLAIMS_DECISION_MODEL": cloud.model("gpt-cloud"), "CLAIMS_LOCAL_MODEL": "local:smollm2",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector[0], "OTEL_EXPORTER_OTLP_COMPRESSION": "none",
        "OTEL_BSP_SCHEDULE_DELAY": "200", "TETHER_CAPTURE_CONTENT": "1",
        "TETHER_TRACE_STORE": str(tmp_path / "traces.db")}
    brain_env = base | {"TETHER_VAULT": str(tmp_path / "brain-vault.db"), "CLAIMS_DB": str(tmp_path / "none.db")}
    vault_env = base | {"TETHER_VAULT": str(tmp_path / "vault.db"), "CLAIMS_DB": str(tmp_path / "private.db")}
    queue = unique_queue("claims")
    server = DevServer(tmp_path / "temporal", port=0, ui_port=0).start()
    procs = []
    try:
        procs = [run_worker_process(EXAMPLE, address=server.address, task_queue=queue, queues=["main"],
                                    env=brain_env),
                 run_worker_process(EXAMPLE, address=server.address, task_queue=queue, queues=["vault"],
                                    env=vault_env)]
        codec = build_codec(Keyring([key]), store=FileStore(tmp_path / "payloads"))
        conn = tether.Connection(address=server.address, task_queue=queue, codec=codec)
        client = tether.Client(await conn.connect(), conn)
        runs = [await client.start(claims.process_claim, {"claim_id": f"CL-{i}", "customer_id": row[0],
                                                          "amount": 400 + i, "category": "hospital"})
                for i, row in enumerate(rows)]
        outcomes = await asyncio.wait_for(asyncio.gather(*(r.result() for r in runs)), 240)
        detail = await runs[0].describe()
    finally:
        logs = [_stop(p) for p in procs]
        server.stop()
    assert all(o.approved and o.payout == 250.0 for o in outcomes), logs
    assert [s.zone for s in detail.steps if s.name in ("open_claim", "record_decision")] == ["vault", "vault"]

    # (a) the Temporal server's SQLite files: zero occurrences
    db_files = sorted((tmp_path / "temporal").glob("temporal.db*"))
    assert db_files and sum(f.stat().st_size for f in db_files) > 100_000
    stored = b"".join(f.read_bytes() for f in db_files)
    assert b"process_claim" in stored  # the search does see the server's data
    assert [n for n in needles if n in stored] == []

    # (b) every exported span (OTLP exports and the local span store): zero occurrences
    spans = b"".join(collector[1])
    assert b"open_claim" in spans and b"gpt-cloud" in spans and b"smollm2" in spans  # both zones traced
    assert b"severity" in spans  # content capture is on: prompts and replies are in the spans
    assert b"<medical_notes withheld>" in spans  # the vault's prompt to its local model, redacted
    assert [n for n in needles if n in spans] == []
    store = b"".join(f.read_bytes() for f in tmp_path.glob("traces.db*"))
    assert b"open_claim" in store
    assert [n for n in needles if n in store] == []

    # (c) every request the cloud-model server received: zero occurrences
    assert len(cloud.requests) == 20
    sent = b"".join(json.dumps([r.path, r.headers, r.body]).encode() for r in cloud.requests)
    assert b"severity" in sent  # the requests are the decision prompts
    assert [n for n in needles if n in sent] == []

    # the vault file holds every planted value
    with sqlite3.connect(tmp_path / "vault.db") as db:
        vaulted = " ".join(v for (v,) in db.execute("SELECT value FROM sensitive"))
    assert all(row[2] in vaulted and row[4] in vaulted for row in rows)
    assert not (tmp_path / "brain-vault.db").exists()  # the brain never stored a sensitive value
    with sqlite3.connect(tmp_path / "private.db") as db:
        assert db.execute("SELECT count(*) FROM decisions").fetchone() == (20,)
