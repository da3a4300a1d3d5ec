"""Leak catalogue: every way a zone step can try to let a sensitive value out, each against a
value planted for it alone; prints caught / not caught per way.

A vault worker and a main worker run in this process against a dev server with its
database in a file. Payload encryption is off on purpose, so the Temporal database holds
exactly what left the zone (with keys it would be ciphertext anyway). Afterwards every
planted value is searched for, in every form the guard knows (exact, escaped, case- and
separator-insensitive, base64, hex, URL-encoded), in: the Temporal database files, every
span (content capture on), every log line (tether's JSON format, temporalio's warnings
included), every request the loopback cloud-model server received, and every event a watcher
of each run was shown (`Run.events()`: steps, progress, tokens). A way is caught
when its value is in none of them. Exit status 1 when a way the README promises is not caught.

    .venv/bin/python -m benchmarks.leaks [--markdown]
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import dataclasses
import io
import json
import logging
import os
import random
import re
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import tether
from benchmarks import leak_workloads as w
from tether import _forms, observe
from tether.engine.codec import FileStore, build_codec
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.observe._logging import JsonFormatter, RunContextFilter
from tether.testing import ChatServer, Received, Reply, chat_reply, unique_queue

_HANDLE_TEXT = re.compile(r"kind\W{1,12}tether\.sensitive")
_SIDE_EFFECTS = {"heartbeat details", "progress message", "log line", "span attribute"}
NOT_PROMISED = {"span attribute", "short value (4 chars)", "split in two", "reversed"}
"""Ways the README lists as not caught (the guard does not promise them)."""
WORDS = ["sarcoidosis", "keratoconus", "hemochromatosis", "spondylitis", "cholangitis", "fibrosis",
         "thyroiditis", "retinopathy", "melanoma", "arrhythmia"]


def _plant(kind: str, rng: random.Random) -> str:
    if kind == "ssn":
        return f"{rng.randint(100, 665)}-{rng.randint(10, 99)}-{rng.randint(1000, 9999)}"
    if kind == "pin":
        return "".join(rng.choice("BCDFGHJKLMNPQRSTVWXZ") for _ in range(4))
    return (f"Patient Zoë {secrets.token_hex(3)} reports {rng.choice(WORDS)} since {rng.randint(1990, 2024)}.\n"
            f"Referred to {rng.choice(WORDS)} clinic {secrets.token_hex(2)}.")


def _cloud(received: Received) -> Reply:
    """The cloud model: calls the vault tool once when offered, then files whatever it got."""
    messages = received.body.get("messages", [])
    if received.body.get("tools") and not any(m.get("role") == "tool" for m in messages):
        return Reply(tool_calls=[{"id": "call_1", "name": "leak_tool", "arguments": {"customer_id": "c-1"}}])
    return chat_reply("filed")


class _Sinks:
    """Everything that left the zone, as text, and the search for a value in it."""

    def __init__(self, texts: dict[str, str]) -> None:
        self.texts = texts
        # each sink as stored, and with one and two levels of JSON/repr escaping undone
        self.variants = {name: _unescaped(t) for name, t in texts.items()}
        self.folded = {name: [_forms.canon(v) for v in vs] for name, vs in self.variants.items()}

    def where(self, value: str, outputs: list[str]) -> list[str]:
        """Sinks holding `value` in any form the guard knows, or `outputs` (the way's own
        transformation of it, e.g. reversed) as they are."""
        forms = _forms.forms_of(value)
        needles = [*forms.exact, value, *outputs]
        return [name for name in self.texts
                if any(n in v for v in self.variants[name] for n in needles)
                or any(c in f for f in self.folded[name] for c in forms.canonical)]


def _unescaped(text: str) -> list[str]:
    out = [text]
    for _ in range(2):
        raw = out[-1].encode("latin-1", "backslashreplace")
        out.append(codecs.decode(raw, "unicode_escape", errors="ignore"))
    return out


def _output(way: str) -> list[str]:
    """What the way's step makes of its value, as texts (e.g. the reversed value, the two halves)."""
    if way not in w.WAYS or way in _SIDE_EFFECTS:
        return []
    try:
        out = w.WAYS[way][1](w.PLANTED[way])
    except Exception:
        return []
    return [t for t in _forms.texts(out) if len(t) >= _forms.MIN_CANON - 1]


async def _watch(run: tether.Run[Any], seen: list[str]) -> None:
    """A watcher of the run's live events (`Run.events()`): what it is shown left the zone too."""
    async for ev in run.events():
        seen.append(json.dumps(dataclasses.asdict(ev), default=str))


async def _attempt_all(address: str, model: str, ways: list[str], store: Path,
                       watched: list[str]) -> dict[str, str]:
    conn = Connection(address=address, task_queue=unique_queue("leaks"), telemetry=True,
                      codec=build_codec(None, store=FileStore(store)))
    client = tether.Client(await conn.connect(), conn)
    outcomes: dict[str, str] = {}
    async with tether.Worker(client, workflows=[w.leak_attempt]), \
            tether.Worker(client, queues=["vault"], workflows=[]):
        runs = {way: await client.start(w.leak_attempt, {"way": way, "model": model}) for way in ways}
        watchers = [asyncio.ensure_future(_watch(run, watched)) for run in runs.values()]
        for way, run in runs.items():
            try:
                outcomes[way] = str(await asyncio.wait_for(run.result(), 120))
            except tether.RunFailed as exc:
                outcomes[way] = f"run failed: {exc}"
        await asyncio.wait(watchers, timeout=60)
    return outcomes


async def main(markdown: bool) -> int:
    rng = random.Random()
    kinds = {way: kind for way, (kind, _) in w.WAYS.items()} | w.SPECIAL
    w.PLANTED.update({way: _plant(kind, rng) for way, kind in kinds.items()})
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RunContextFilter())
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    observe.set_capture_content(True)
    with tempfile.TemporaryDirectory() as tmp, ChatServer(default=_cloud) as cloud, \
            observe.capture_spans() as spans:
        os.environ["TETHER_VAULT"] = str(Path(tmp) / "vault.db")
        server = DevServer(Path(tmp) / "temporal", port=0, ui_port=0).start()
        watched: list[str] = []
        try:
            await _attempt_all(server.address, cloud.model("gpt-cloud"), list(kinds), Path(tmp) / "payloads",
                               watched)
        finally:
            server.stop()
        observe.flush()
        assert server.db_path is not None
        db = b"".join(f.read_bytes() for f in server.db_path.parent.glob("temporal.db*"))
        sinks = _Sinks({
            "temporal db": db.decode("latin-1"),
            "spans": "\n".join(s.to_json() for s in spans.get_finished_spans()),
            "logs": logs.getvalue(),
            "cloud requests": "\n".join(json.dumps(r.body) for r in cloud.requests),
            "live events": "\n".join(watched),
        })
    return _report(sinks, kinds, markdown)


def _report(sinks: _Sinks, kinds: dict[str, str], markdown: bool) -> int:
    broken = []
    rows = []
    for way, kind in kinds.items():
        if way == "untyped handle in a prompt":  # the value never left: did the handle reach the model?
            found = ["cloud requests"] if _HANDLE_TEXT.search(sinks.texts["cloud requests"]) else []
        else:
            found = sinks.where(w.PLANTED[way], _output(way))
        caught = "caught" if not found else "NOT caught"
        promised = way not in NOT_PROMISED
        if found and promised:
            broken.append(way)
        rows.append((way, kind, caught, ", ".join(found) or "-", "yes" if promised else "no"))
    head = ("way out of the vault step", "value", "result", "found in", "promised")
    if markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for r in rows:
            print("| " + " | ".join(r) + " |")
    else:
        for r in [head, *rows]:
            print(f"{r[0]:34} {r[1]:6} {r[2]:11} {r[3]:40} {r[4]}")
    n_caught = sum(1 for r in rows if r[2] == "caught")
    print(f"\n{n_caught}/{len(rows)} ways caught; promised ways leaking: {', '.join(broken) or 'none'}")
    sizes = ", ".join(f"{name} {len(text):,}" for name, text in sinks.texts.items())
    print(f"searched (characters): {sizes}")
    return 1 if broken else 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--markdown", action="store_true", help="Print the table as markdown (for the README).")
    a = p.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(asyncio.run(main(a.markdown)))
