"""Studio's guards over real HTTP on loopback: the token on non-loopback binds (every page and API
call refused without it), CSRF and cross-site posts, DNS-rebinding hosts, no-store caching, body
limits, and decryption with the Studio's own payload key only."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

import tether
from tests.apps import studio_flows as flows
from tests.studio.conftest import REPO, TOKEN, StudioServer, serve_studio
from tether.engine.codec import Keyring, build_codec, new_key
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.studio import serve
from tether.testing import unique_queue

CLAIM = {"customer": "Secret Corp", "amount": 99.5, "address": {"city": "Oslo"}}


def _concrete(path: str, run_id: str) -> str:
    """A real URL for a route template (path parameters filled in)."""
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: {"workflow": "studio_claim", "task_id": f"{run_id}.1"}.get(
        m.group(1), run_id), path)


async def test_without_the_token_every_page_and_api_call_is_refused(locked_studio: StudioServer) -> None:
    run = await locked_studio.client.start(flows.studio_claim, CLAIM, id=f"secret-{unique_queue()}")
    app = locked_studio.running.server.config.app
    routes = [r for r in app.routes if isinstance(r, Route) and r.path != "/login"]
    assert len(routes) >= 14, [r.path for r in routes]  # every page and API route, found by walking the app
    checked = 0
    async with locked_studio.http() as http:
        for route in routes:
            for method in sorted((route.methods or set()) - {"HEAD"}):
                url = _concrete(route.path, run.id)
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": "tether_session=forged"}):
                    body = {"csrf": "x"} if method == "POST" else None
                    r = await http.request(method, url, headers=headers, data=body)
                    refused = r.status_code == 401 or (r.status_code == 303 and r.headers["location"].startswith(
                        "/login?next="))
                    assert refused, f"{method} {url} with {headers}: {r.status_code}"
                    assert "Secret" not in r.text and run.id not in r.text
                    checked += 1
        assert checked >= 3 * len(routes)
        # with the token, as a bearer (API clients) or through the login form (browsers), all is served
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert (await http.get("/api/tasks", headers=bearer)).status_code == 200
        page = await http.get(f"/runs/{run.id}", headers=bearer)
        assert page.status_code == 200 and "Secret Corp" in page.text
    async with locked_studio.http() as browser:
        form = await browser.get("/login")
        csrf = browser.cookies["tether_csrf"]
        assert f'value="{csrf}"' in form.text
        assert (await browser.post("/login", data={"token": TOKEN, "next": "/runs"})).status_code == 403  # no CSRF
        logged = await browser.post("/login", data={"token": TOKEN, "next": "/runs", "csrf": csrf})
        assert logged.status_code == 303 and logged.headers["location"] == "/runs"
        assert "HttpOnly" in logged.headers["set-cookie"] and "SameSite=strict" in logged.headers["set-cookie"]
        assert (await browser.get("/runs")).status_code == 200
        assert (await browser.get("/api/health")).json() == {"ok": True}
        away = await browser.post("/login", data={"token": TOKEN, "next": "https://evil.example/", "csrf": csrf})
        assert away.headers["location"] == "/runs"  # never redirected off-site
    async with tether.Worker(locked_studio.client):
        await locked_studio.client.get(run.id).cancel()
        await _ended(locked_studio.client, run.id)


async def test_serving_beyond_loopback_needs_a_token(tether_client: tether.Client) -> None:
    with pytest.raises(tether.ConfigError, match="TETHER_API_TOKEN"):
        await serve(tether_client, host="0.0.0.0", port=7399)  # refused before binding anything
    r = subprocess.run([sys.executable, "-m", "tether", "studio", "--host", "0.0.0.0"], cwd=REPO,
                       capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    assert r.returncode == 1
    assert r.stderr.strip().startswith("error: serving on 0.0.0.0 makes it reachable from other machines")
    assert "Traceback" not in r.stderr


async def test_forms_need_the_csrf_token_and_cross_site_posts_are_refused(studio: StudioServer) -> None:
    async with tether.Worker(studio.client):
        run = await studio.client.start(flows.studio_claim, CLAIM)
        async with studio.http() as http:
            await http.get("/runs")  # sets the CSRF cookie
            csrf = http.cookies["tether_csrf"]
            missing = await http.post(f"/runs/{run.id}/cancel", data={})
            wrong = await http.post(f"/runs/{run.id}/cancel", data={"csrf": "x" * 43})
            assert (missing.status_code, wrong.status_code) == (403, 403)
            assert "Reload the page and send it again" in missing.text
            cancel = f"/runs/{run.id}/cancel"
            evil = await http.post(cancel, data={"csrf": csrf}, headers={"Origin": "http://evil.example"})
            sibling = await http.post(cancel, data={"csrf": csrf}, headers={"Sec-Fetch-Site": "same-site"})
            api = await http.post(f"/api/tasks/{run.id}.1/answer", json={"answer": {}},
                                  headers={"Origin": "http://evil.example"})
            assert (evil.status_code, sibling.status_code, api.status_code) == (403, 403, 403)
            assert "cross-site request forgery" in evil.text
            assert (await studio.client.get(run.id).describe()).status == "running"  # nothing was cancelled
            rebinding = await http.get("/runs", headers={"Host": "evil.example"})
            assert rebinding.status_code == 403 and "loopback only" in rebinding.text
            ok = await http.post(f"/runs/{run.id}/cancel", data={"csrf": csrf}, headers={"Origin": studio.url})
            assert ok.status_code == 303
        await _ended(studio.client, run.id)


async def _ended(client: tether.Client, run_id: str) -> None:
    try:
        await client.get(run_id).result()
    except tether.RunCancelled:
        return
    raise AssertionError(f"{run_id} was not cancelled")


async def test_no_decrypted_page_is_cached_and_bodies_are_limited(studio: StudioServer) -> None:
    async with tether.Worker(studio.client):
        run = await studio.client.start(flows.studio_claim, CLAIM)
        async with studio.http() as http:
            for url in ("/runs", f"/runs/{run.id}", f"/runs/{run.id}/live", "/runs/rows", "/inbox", "/metrics",
                        "/start/studio_claim", "/api/tasks"):
                r = await http.get(url)
                assert r.status_code == 200, f"{url}: {r.text[-600:]}"
                assert r.headers["cache-control"] == "no-store", url
                assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
                assert r.headers["x-content-type-options"] == "nosniff"
            css = await http.get("/static/studio.css")
            assert css.status_code == 200 and css.headers["cache-control"].startswith("public")
            await http.get("/start")
            big = await http.post("/start/studio_claim", data={"csrf": http.cookies["tether_csrf"],
                                                               "f.customer": "x" * 300_000})
            assert big.status_code == 413
        await studio.client.get(run.id).cancel()
        await _ended(studio.client, run.id)


async def test_run_pages_are_decrypted_with_the_studio_key_only(tether_server: DevServer, tmp_path: Path) -> None:
    queue = unique_queue("studio")
    key = Keyring([new_key()])
    mine = Connection(address=tether_server.address, task_queue=queue, codec=build_codec(key))
    other = Connection(address=tether_server.address, task_queue=queue, codec=build_codec(Keyring([new_key()])))
    client = tether.Client(await mine.connect(), mine)
    async with tether.Worker(client):
        run = await client.start(flows.studio_quick, 424242)
        assert await run.result() == 424242
    for conn, shown in ((mine, True), (other, False)):
        running = await serve_studio(tether.Client(await conn.connect(), conn), tmp_path / "traces.db")
        try:
            async with httpx.AsyncClient(base_url=running.url) as http:
                page = await http.get(f"/runs/{run.id}")
            assert page.status_code == 200
            assert ("424242" in page.text) is shown
            if not shown:
                assert "cannot decode" in page.text and "which this process does not have" in page.text
        finally:
            await running.stop()
