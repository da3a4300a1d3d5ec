"""Studio's Evaluations pages, served for real on loopback over a real evaluation's report."""

from __future__ import annotations

from pathlib import Path

import httpx

import tether
from tests.apps.eval_flows import read_note
from tether.engine.devserver import free_port
from tether.evals import Exact, Fields, evaluate, load_cases
from tether.studio import create_studio, start_background

HERE = Path(__file__).resolve().parent


async def test_the_evaluation_page_compares_configurations_and_links_each_case_run(
        tether_client: tether.Client, tmp_path: Path) -> None:
    async with tether.Worker(tether_client):
        report = await evaluate(tether_client, read_note, load_cases(HERE / "cases.jsonl")[:3], name="studio-page",
                                scorers=[Fields(), Exact()], configs=[{}, {"extract": "scripted:eval-sloppy"}])
    (tmp_path / "studio-page.json").write_text(report.model_dump_json())
    (tmp_path / "notes.json").write_text("{}")  # not a report: left out, not an error
    port = free_port()
    running = await start_background(create_studio(tether_client, evals=tmp_path), port=port)
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
            listing = await http.get("/evals")
            page = await http.get("/evals/studio-page")
            missing = await http.get("/evals/nope")
            run = await http.get(f"/runs/{report.cases[0].run_id}")
    finally:
        await running.stop()
    assert listing.status_code == 200 and 'href="/evals/studio-page"' in listing.text
    assert "default (100.0%)" in listing.text  # the best configuration and its score
    assert page.status_code == 200
    assert page.text.count("<svg") >= 3  # scores per scorer, cost, latency
    assert "extract=scripted:eval-sloppy" in page.text and "field amount" in page.text
    for r in report.cases:
        assert f'href="/runs/{r.run_id}"' in page.text
    assert missing.status_code == 404 and "No evaluation named" in missing.text
    assert run.status_code == 200 and report.cases[0].run_id in run.text
