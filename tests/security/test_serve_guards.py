"""Item 5: `tether serve` (the real CLI, on loopback) has Studio's guards. Each test is an attack a
web page or a rebinding DNS name could make on the approval API, and what stops it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

import tether
from tests.security._ways_support import cli, end, served, waiting_run

PAYMENT = {"answer": {"approved": True, "amount": 12400}}


async def test_a_foreign_host_name_is_refused_dns_rebinding(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run, task_id = await waiting_run(tether_client)
        try:
            async with served("serve", tether_client) as api, httpx.AsyncClient(base_url=api.url) as http:
                # a page on attacker.example whose DNS name now points at 127.0.0.1: its requests say so in Host
                for host in ("attacker.example", f"attacker.example:{api.port}", "127.0.0.1.nip.io", ""):
                    listed = await http.get("/api/tasks", headers={"Host": host})
                    assert listed.status_code == 403, (host, listed.text)
                    assert task_id not in listed.text and "INV-66" not in listed.text
                    answered = await http.post(f"/api/tasks/{task_id}/answer", json=PAYMENT, headers={"Host": host})
                    assert answered.status_code == 403
                ok = await http.get("/api/tasks", params={"run": run.id})
                assert ok.status_code == 200 and [t["id"] for t in ok.json()["tasks"]] == [task_id]
                assert (await tether_client.tasks.get(task_id)).status == "open"
        finally:
            await end(tether_client, run)


async def test_a_cross_site_post_cannot_answer_a_task(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        run, task_id = await waiting_run(tether_client)
        try:
            async with served("serve", tether_client) as api, httpx.AsyncClient(base_url=api.url) as http:
                url = f"/api/tasks/{task_id}/answer"
                body = json.dumps(PAYMENT)
                # what <form enctype="text/plain"> or fetch(..., {mode: "no-cors"}) on another site sends
                attempts = [
                    {"Content-Type": "text/plain", "Origin": "https://attacker.example",
                     "Sec-Fetch-Site": "cross-site"},
                    {"Content-Type": "text/plain", "Origin": "https://attacker.example"},
                    {"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"},
                    {"Content-Type": "text/plain;charset=UTF-8"},  # a browser that sends neither header
                    {"Content-Type": "application/x-www-form-urlencoded"},
                    {"Content-Type": "multipart/form-data; boundary=x"},
                    {},  # no content type at all
                    {"Content-Type": "application/json", "Origin": "null"},  # a sandboxed iframe
                    {"Content-Type": "application/json", "Origin": f"http://127.0.0.1:{api.port + 1}"},
                ]
                for headers in attempts:
                    r = await http.post(url, content=body, headers=headers)
                    assert r.status_code in (403, 415), (headers, r.status_code, r.text)
                assert (await tether_client.tasks.get(task_id)).status == "open"
                # the same answer from a script or the same origin, as JSON, is taken
                r = await http.post(url, content=body, headers={"Content-Type": "application/json; charset=utf-8",
                                                                "Origin": api.url})
                assert r.status_code == 200, r.text
                assert (await run.result()).amount == 12400
        finally:
            await end(tether_client, run)


async def test_beyond_loopback_a_token_is_required(tether_client: tether.Client, tmp_path: Path) -> None:
    code, _, err = await cli("serve", "--host", "0.0.0.0", "--address", tether_client.connection.address,
                             env={"TETHER_API_TOKEN": ""})
    assert code == 1 and "TETHER_API_TOKEN" in err and "--token-file" in err  # refused before binding
    tokens = tmp_path / "tokens"
    tokens.write_text("ops:ops-token-0123456789\n")
    async with tether.Worker(tether_client):
        run, task_id = await waiting_run(tether_client)
        try:
            async with served("serve", tether_client, "--token-file", str(tokens)) as api, \
                    httpx.AsyncClient(base_url=api.url, timeout=60) as http:
                assert "token required" in api.banner
                url = f"/api/tasks/{task_id}/answer"
                wrong: tuple[dict[str, str], ...] = (
                    {}, {"Authorization": "Bearer wrong-token-0000000"}, {"Authorization": "ops-token-0123456789"})
                for auth in wrong:
                    assert (await http.get("/api/tasks", headers=auth)).status_code == 401
                    assert (await http.post(url, json=PAYMENT, headers=auth)).status_code == 401
                r = await http.post(url, json=PAYMENT, headers={"Authorization": "Bearer ops-token-0123456789"})
                assert r.status_code == 200, r.text
                assert r.json()["answered_by"] == "token:ops"
        finally:
            await end(tether_client, run)
