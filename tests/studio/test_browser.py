"""Acceptance in a real headless Chromium: start a run from the form, watch it appear, open it, read
its model call and prompt, answer its human task from the inbox (one invalid answer, then a valid
one), see it complete, and find its figures on the metrics page. Screenshots of every page are saved
under test-artifacts/studio/."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from playwright.async_api import expect

import tether
from tests.apps import studio_flows as flows
from tests.studio.conftest import TOKEN, StudioServer, screenshot
from tether.llm import _report as llm_report
from tether.studio import render


async def test_start_watch_open_answer_and_complete_a_run(studio: StudioServer, page: Any) -> None:
    async with tether.Worker(studio.client):
        await page.goto(f"{studio.url}/runs")
        await expect(page.locator("h1")).to_have_text("Runs")

        # start a run from the form generated from the workflow's input schema, in a second tab
        form = await page.context.new_page()
        await form.goto(f"{studio.url}/start")
        await screenshot(form, "01-start")
        await form.click("a[href='/start/studio_claim']")
        await form.fill("#f\\.customer", "Flaky Dana Ltd")
        await form.fill("#f\\.amount", "twelve")
        await form.select_option("#f\\.priority", label="high")
        await form.check("#f\\.express")
        await form.click("button[type=submit]")
        # an unreadable number and a missing nested field: both named next to their fields, nothing started
        await expect(form.locator(".field[data-path='amount'] .error")).to_have_text("enter a number, not 'twelve'")
        await expect(form.locator("#problem")).to_contain_text("nothing was started")
        await form.fill("#f\\.amount", "1250.50")
        await form.click("button[type=submit]")
        await expect(form.locator(".field[data-path='address.city'] .error")).to_have_text("Field required")
        await expect(form.locator("#f\\.priority")).to_have_value('"high"')  # what was typed is kept
        assert not await studio.client.list_runs(task_queue=studio.client.connection.task_queue)
        await form.fill("#f\\.address\\.city", "Lyon")
        await screenshot(form, "02-start-form")
        await form.click("button[type=submit]")
        await form.wait_for_url(re.compile(r"/runs/studio_claim-"))
        run_id = form.url.rsplit("/runs/", 1)[1].split("?")[0]
        await form.close()

        # watch it appear on the runs page, which refreshes itself
        row = page.locator(f"tr[data-run='{run_id}']")
        await expect(row).to_be_visible(timeout=20_000)
        await expect(row).to_contain_text("studio_claim")
        await expect(row.locator(".badge.status")).to_have_text("running")
        await screenshot(page, "03-runs")

        # open it: the model call, its prompt and reply, the decision, the retried step
        await row.locator("a").first.click()
        await page.wait_for_url(f"**/runs/{run_id}")
        call = page.locator("#call-1")
        await expect(call).to_contain_text("scripted:studio-triage", timeout=20_000)
        await expect(call.locator(".msg.system")).to_contain_text("You triage insurance claims.")
        await expect(call.locator(".msg.user")).to_contain_text(
            "Claim from Flaky Dana Ltd in Lyon: 1250.50 EUR")
        await expect(call.locator(".msg.assistant")).to_contain_text('"category": "water damage"')
        await expect(page.locator("table.timeline")).to_contain_text("needs_review = True (risk=0.82, limit=0.5)")
        await expect(page.locator("table.timeline tr", has_text="studio_policy_lookup")).to_contain_text(
            "policy database timed out")
        await expect(page.locator(".flash.live")).to_contain_text(f"answer task {run_id}.1", timeout=20_000)
        await expect(page.locator("a", has_text="Temporal UI")).to_have_attribute(
            "href", f"http://127.0.0.1:8233/namespaces/default/workflows/{run_id}")
        await screenshot(page, "04-run-waiting")

        # the inbox lists its task
        task_id = f"{run_id}.1"
        await _until_listed(page, f"{studio.url}/inbox", f"tr[data-task='{task_id}']")
        await screenshot(page, "05-inbox")
        await page.click(f"tr[data-task='{task_id}'] a[href='/inbox/{task_id}']")
        await expect(page.locator("h1.question")).to_have_text(
            "Approve the water damage claim of Flaky Dana Ltd (1250 EUR)?")
        await expect(page.locator("pre.json")).to_contain_text('"policy"')
        await screenshot(page, "06-task")

        # an invalid answer: refused by the run, shown next to the field, the task stays open
        await page.check("#f\\.approved")
        await page.fill("#f\\.payout", "-5")
        await page.select_option("#f\\.reason", label="partial cover")
        await page.fill("#answered_by", "dana")
        await page.click("button[type=submit]")
        await expect(page.locator(".field[data-path='payout'] .error")).to_have_text(
            "Input should be greater than or equal to 0")
        await expect(page.locator("#problem")).to_contain_text("the task is still open")
        await expect(page.locator("#f\\.payout")).to_have_value("-5")
        await expect(page.locator("#answered_by")).to_have_value("dana")
        assert (await studio.client.tasks.get(task_id)).status == "open"
        await screenshot(page, "07-task-invalid")

        # a valid one
        await page.fill("#f\\.payout", "900")
        await page.click("button[type=submit]")
        await expect(page.locator("#answered")).to_contain_text(f"Run {run_id} goes on")
        await expect(page.locator("#task-status")).to_have_text("answered")
        await expect(page.locator("#task-answer")).to_contain_text('"payout": 900')
        await screenshot(page, "08-task-answered")

        # the run completes; its page follows it live
        await page.click(f"a[href='/runs/{run_id}']")
        await expect(page.locator("#run-status")).to_have_text("completed", timeout=20_000)
        await expect(page.locator("#run-result")).to_contain_text('"payout": 900')
        await expect(page.locator("table.timeline")).to_contain_text("on behalf of dana")  # beside the login
        await screenshot(page, "09-run-completed")

    outcome = await studio.client.get(run_id).result()
    assert outcome == flows.Outcome(customer="Flaky Dana Ltd", category="water damage", approved=True,
                                    payout=900).model_dump()
    detail = await studio.client.get(run_id).describe()
    (reply,) = [r for r in (llm_report.reply_of(s) for s in detail.steps) if r is not None]
    assert reply.cost and reply.usage.input_tokens > 0

    # the metrics page shows this run's figures (the span store is this test's own)
    await _until_listed(page, f"{studio.url}/metrics", "#kpi-runs:text-is('1')")
    models = page.locator("#m-models tr", has_text="scripted:studio-triage")
    await expect(models).to_contain_text(f"{reply.usage.input_tokens}")
    cells = await models.locator("td").all_inner_texts()
    assert cells[1:3] == ["1", "0"], cells  # calls, errors
    assert cells[5:8] == [str(reply.usage.input_tokens), str(reply.usage.output_tokens), render.usd(reply.cost)]
    await expect(page.locator("#kpi-calls")).to_have_text("1")
    await expect(page.locator("#kpi-cost")).to_have_text(render.usd(reply.cost))
    await expect(page.locator("#kpi-human")).to_have_text("100.0%")
    step = await page.locator("#m-steps tr", has_text="studio_policy_lookup").locator("td").all_inner_texts()
    assert step == ["studio_policy_lookup", "1", "2", "1", "100.0%", "1"]
    await expect(page.locator("#m-workflows tr", has_text="studio_claim")).to_contain_text(render.usd(reply.cost))
    await expect(page.locator("#m-human")).to_contain_text("1 of 1 finished runs asked a person; 1 tasks: 1 answered")
    await expect(page.locator("#m-tokens svg rect[fill]").first).to_be_visible()
    await screenshot(page, "10-metrics")


async def _until_listed(page: Any, url: str, selector: str, timeout: float = 20) -> None:
    """Reload `url` until `selector` shows (listings read Temporal's visibility store, which lags)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        await page.goto(url)
        if await page.locator(selector).count():
            return
        if loop.time() > deadline:
            raise AssertionError(f"{selector} never showed on {url}")
        await asyncio.sleep(0.3)


async def test_cancel_a_run_from_its_page(studio: StudioServer, page: Any) -> None:
    async with tether.Worker(studio.client):
        run = await studio.client.start(flows.studio_claim, {"customer": "Ann", "amount": 10,
                                                             "address": {"city": "Nice"}})
        await page.goto(f"{studio.url}/runs/{run.id}")
        await expect(page.locator(".flash.live")).to_be_visible(timeout=20_000)  # waiting for a person
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await page.click("button.danger")
        # the run may still show "waiting for a person" beside the notice until it has ended
        await expect(page.locator(".flash", has_text="Cancellation requested")).to_be_visible()
        await expect(page.locator("#run-status")).to_have_text("cancelled", timeout=20_000)
        await expect(page.locator("button.danger")).to_have_count(0)
        try:
            await run.result()
        except tether.RunCancelled:
            pass
        else:
            raise AssertionError("the run was not cancelled")


async def test_login_form_on_a_studio_that_needs_the_token(locked_studio: StudioServer, page: Any) -> None:
    await page.goto(f"{locked_studio.url}/inbox")
    await page.wait_for_url("**/login?next=%2Finbox")
    await screenshot(page, "00-login")
    await page.fill("#token", "not-the-token")
    await page.click("button[type=submit]")
    await expect(page.locator(".error")).to_contain_text("not the token")
    await page.fill("#token", TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/inbox")
    await expect(page.locator("h1")).to_have_text("Inbox")
    await page.click("text=Log out")
    await page.wait_for_url("**/login")
    await page.goto(f"{locked_studio.url}/runs")
    await page.wait_for_url("**/login?next=%2Fruns")


async def test_an_escalation_form_picks_a_variant_and_fills_its_nested_fields(studio: StudioServer, page: Any) -> None:
    from tests.apps import human_flows

    async with tether.Worker(studio.client):
        run = await studio.client.start(human_flows.human_escalating, "ACME")
        task_id = f"{run.id}.1"
        await _until_listed(page, f"{studio.url}/inbox", f"tr[data-task='{task_id}']")
        await page.click(f"a[href='/inbox/{task_id}']")
        await expect(page.locator("h1.question")).to_contain_text("supplier ACME is unreachable")
        # one select for what to do; only the chosen variant's fields show
        await expect(page.locator("#f\\~1\\.value\\.supplier")).to_be_hidden()
        await page.select_option("#f\\.action", label="use")
        await expect(page.locator("#f\\~1\\.value\\.supplier")).to_be_visible()
        await expect(page.locator("#f\\~2\\.reason")).to_be_hidden()
        await page.fill("#f\\~1\\.value\\.supplier", "ACME")
        await page.fill("#f\\~1\\.value\\.price", "cheap")
        await page.click("button[type=submit]")
        await expect(page.locator(".field[data-path='value.price'] .error")).to_have_text(
            "enter a number, not 'cheap'")
        await expect(page.locator("#f\\.action")).to_have_value('"use"')
        await expect(page.locator("#f\\~1\\.value\\.supplier")).to_be_visible()
        await page.fill("#f\\~1\\.value\\.price", "12.5")
        await screenshot(page, "11-escalation")
        await page.click("button[type=submit]")
        await expect(page.locator("#answered")).to_be_visible()
        assert await run.result() == human_flows.Quote(supplier="ACME", price=12.5)
