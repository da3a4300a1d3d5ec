"""The run page over real HTTP, for runs that exercise everything it shows: retries, repair and
fallback rounds of model calls, a tool call, a decision and a note (from the history and the
span store), egress blocks and sensitive values shown only as handles."""

from __future__ import annotations

import httpx
import pytest

import tether
from tests.apps import obs_flows
from tests.studio.conftest import StudioServer
from tether import observe


async def _page(studio: StudioServer, url: str) -> str:
    async with httpx.AsyncClient(base_url=studio.url, timeout=30) as http:
        r = await http.get(url)
    assert r.status_code == 200, r.text
    return r.text


async def test_the_run_page_explains_retries_rounds_tools_and_decisions(studio: StudioServer) -> None:
    async with tether.Worker(studio.client, workflows=[obs_flows.obs_explained]):
        run = await studio.client.start(obs_flows.obs_explained, "ACME invoice, total 250 EUR")
        await run.result()
    observe.flush()
    html = await _page(studio, f"/runs/{run.id}")
    assert 'id="run-status">completed<' in html
    # the retried step: 3 attempts, the last failure named
    assert "<b class=\"warn-text\">3</b>" in html and "retried after: flaky: attempt 2 failed" in html
    # model calls: first ask, repair round with its reason, the failed primary and its fallback
    for text in ("llm scripted:obs-repair · structured Fields", "repair 1", "Why this call: invalid reply from "
                 "scripted:obs-repair", "llm scripted:obs-down · chat", "obs-down: service unavailable",
                 "scripted:obs-up", "fallback 1", "summarise ACME", "summary of summarise ACME"):
        assert text in html, text
    assert html.count('<details class="call"') == 4
    # the decision and the note, with the data that informed them (from the run's history)
    assert "high_total = True (total=250.0, limit=100)" in html
    assert "routed to manual review (supplier=ACME)" in html
    # the tool call (from the span store)
    assert "<b>lookup_customer</b>" in html and ">call-1<" in html and "No egress blocks." in html


async def test_egress_blocks_are_listed_and_sensitive_values_stay_handles(studio: StudioServer) -> None:
    async with tether.Worker(studio.client, workflows=[obs_flows.obs_careless], queues=["main", "obsvault"]):
        run = await studio.client.start(obs_flows.obs_careless, "c-17")
        with pytest.raises(tether.RunFailed, match="egress blocked"):
            await run.result()
    observe.flush()
    html = await _page(studio, f"/runs/{run.id}")
    assert obs_flows.SECRET not in html
    assert 'class="handle"' in html and "@obsvault" in html
    assert "openai:gpt-first" in html and 'class="badge bad">blocked<' in html


async def test_child_runs_link_to_their_own_page(studio: StudioServer) -> None:
    from tests.apps import basics

    async with tether.Worker(studio.client, workflows=[basics.parent, basics.fan_out]):
        run = await studio.client.start(basics.parent, 3)
        await run.result()
    html = await _page(studio, f"/runs/{run.id}")
    children = [s for s in (await run.describe()).steps if s.kind == "child"]
    assert children, "the parent started no child run"
    for child in children:
        assert f'href="/runs/{child.id}"' in html
        assert "completed" in await _page(studio, f"/runs/{child.id}")
    assert "Child runs <span class=\"count\">" in html


async def test_a_stuck_run_is_listed_and_shown_as_stuck_with_the_reason(studio: StudioServer) -> None:
    from tests.apps import basics, liveness
    from tether.testing import eventually

    async with tether.Worker(studio.client, workflows=[basics.order_total], steps=[basics.price]):
        run = await studio.client.start(liveness.held, "/nonexistent/journal")

        async def listed_stuck() -> None:
            html = await _page(studio, "/runs")
            row = html[html.index(f'data-run="{run.id}"'):]
            row = row[:row.index("</tr>")]
            assert ">stuck</span>" in row and "is not registered on the worker serving queue" in row

        await eventually(listed_stuck, timeout=30)
        page = await _page(studio, f"/runs/{run.id}")
        assert "This run is stuck: workflow &#39;held&#39; is not registered" in page
        assert f"tether terminate {run.id}" in page
    await studio.client.terminate(run.id, "test over")
