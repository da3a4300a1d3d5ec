"""Studio's live run: the run's events as Server-Sent Events (resumable, behind the same guard),
and the run page in a real Chromium typing out a model's tokens while the run is still going."""

from __future__ import annotations

import json
from typing import Any

from playwright.async_api import expect

import tether
from tests.apps import streaming
from tests.studio.conftest import TOKEN, StudioServer, screenshot
from tether.llm import _providers
from tether.testing import ChatServer
from tether.testing.chat_server import reply

_providers.preload(["openai-compatible"])  # not in the first call: seconds of imports would hold its heartbeats

STORY = ("The claim arrived on a Tuesday with three receipts, a photo of a dented bumper and a very polite "
         "letter; the adjuster read it twice, checked the policy and approved it before lunch.")


def _parse(body: str) -> list[dict[str, Any]]:
    out = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        out.append({"id": fields["id"], "event": fields["event"], **json.loads(fields["data"])})
    return out


async def test_events_stream_as_sse_and_resume_after_last_event_id(studio: StudioServer) -> None:
    with ChatServer(default=reply(STORY, chunk_delay=0.05)) as chat:
        async with tether.Worker(studio.client):
            run = await studio.client.start(streaming.streaming_write, chat.model("story"))
            async with studio.http() as http:
                r = await http.get(f"/api/runs/{run.id}/events")
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
                events = _parse(r.text)
                assert events[-1]["event"] == "run.completed" and events[-1]["data"] == STORY
                assert "".join(e["text"] for e in events if e["event"] == "tokens") == STORY
                assert all(e["id"] == e["offset"] for e in events)
                # a reconnecting EventSource sends the last id it saw: the rest, nothing twice
                middle = next(i for i, e in enumerate(events) if e["event"] == "tokens")
                again = await http.get(f"/api/runs/{run.id}/events",
                                       headers={"Last-Event-ID": events[middle]["id"]})
                rest = _parse(again.text)
                others = [e["event"] for e in rest if e["event"] != "tokens"]
                assert others == [e["event"] for e in events[middle + 1:] if e["event"] != "tokens"]
                assert "".join(e["text"] for e in events[: middle + 1] + rest if e["event"] == "tokens") == STORY
                missing = await http.get("/api/runs/no-such-run/events")
                assert missing.status_code == 404 and "no-such-run" in missing.json()["error"]
                bad = await http.get(f"/api/runs/{run.id}/events", headers={"Last-Event-ID": "garbage"})
                assert bad.status_code == 400 and "not an event offset" in bad.json()["error"]


async def test_the_event_stream_needs_the_token_like_every_other_route(locked_studio: StudioServer) -> None:
    async with locked_studio.http() as http:
        r = await http.get("/api/runs/any/events")
        assert r.status_code == 401
        r = await http.get("/api/runs/any/events", headers={"Authorization": f"Bearer {TOKEN}x"})
        assert r.status_code == 401
        r = await http.get("/api/runs/any/events", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 404  # past the guard: the run does not exist


async def test_the_run_page_types_out_tokens_while_the_run_goes_on(studio: StudioServer, page: Any) -> None:
    with ChatServer(default=reply(STORY, chunk_delay=0.15)) as chat:  # ~5 s of writing
        async with tether.Worker(studio.client):
            run = await studio.client.start(streaming.streaming_write, chat.model("story"))
            await page.goto(f"{studio.url}/runs/{run.id}")
            tokens = page.locator("#run-stream pre.tokens")
            await expect(tokens).to_contain_text("The claim arrived", timeout=30_000)
            partial = await tokens.text_content() or ""
            assert (await run.describe()).status == "running"  # shown while the model is still writing
            assert STORY.startswith(partial) and partial != STORY
            await screenshot(page, "live-tokens")
            await expect(tokens).to_have_text(STORY, timeout=30_000)
            await expect(page.locator("#run-status")).to_have_text("completed", timeout=30_000)
            await run.result()
