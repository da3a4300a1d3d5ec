"""The HTTP API over real HTTP on loopback, against the real dev server and real workers."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator

import httpx
import pytest

import tether
from tests.apps import human_flows as flows
from tests.human.conftest import Api, _serve, cancel, wait_for_task
from tether.engine.connection import Connection
from tether.engine.devserver import DevServer
from tether.studio.api import check_binding, create_app
from tether.studio.security import is_loopback
from tether.testing import run_worker_process, unique_queue


async def test_answer_over_http_after_the_worker_was_killed_and_restarted(
        tether_server: DevServer, tether_client: tether.Client, api: Api) -> None:
    queue = tether_client.connection.task_queue
    worker = run_worker_process("tests.apps.human_flows", address=tether_server.address, task_queue=queue)
    try:
        run = await tether_client.start(flows.human_approval, "Approve INV-9?")
        task_id = f"{run.id}.1"
        await wait_for_task(tether_client, task_id)
        os.kill(worker.pid, signal.SIGKILL)  # as a crash would
        worker.wait()
        # with no worker at all, the task can still be listed and read
        listed = (await api.http.get("/api/tasks", params={"run": run.id})).json()["tasks"]
        assert [t["id"] for t in listed] == [task_id]
        worker = run_worker_process("tests.apps.human_flows", address=tether_server.address,
                                    task_queue=queue)
        reply = await api.http.post(f"/api/tasks/{task_id}/answer",
                                    json={"answer": {"approved": True, "amount": 990},
                                          "answered_by": "dana"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["claimed_by"] == "dana"  # self-declared: kept apart from the identity
        assert reply.json()["answered_by"].startswith("local:")  # loopback without a token
        assert await run.result() == flows.Approval(approved=True, amount=990)
    finally:
        worker.kill()
        worker.wait()


async def test_get_task_has_question_schema_and_context(tether_client: tether.Client, api: Api) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_approval, "Approve?")
        task_id = f"{run.id}.1"
        await wait_for_task(tether_client, task_id)
        body = (await api.http.get(f"/api/tasks/{task_id}")).json()
        assert body["question"] == "Approve?"
        assert body["context"] == {"invoice": "INV-1", "total": 12400}
        assert body["answer_schema"]["properties"]["amount"]["type"] == "integer"
        assert (await api.http.get(f"/api/tasks/{run.id}.9")).status_code == 404
        await cancel(run)


async def test_invalid_answers_get_422_413_400_and_the_task_stays_open(
        tether_client: tether.Client, api: Api) -> None:
    async with tether.Worker(tether_client):
        run = await tether_client.start(flows.human_approval, "Approve?")
        task_id = f"{run.id}.1"
        url = f"/api/tasks/{task_id}/answer"
        await wait_for_task(tether_client, task_id)
        wrong_type = await api.http.post(url, json={"answer": {"approved": True, "amount": "lots"}})
        missing = await api.http.post(url, json={"answer": {"amount": 3}})
        no_answer = await api.http.post(url, json={"approved": True})
        huge = await api.http.post(url, json={"answer": {"approved": True, "amount": 1,
                                                         "comment": "x" * 200_000}})
        chunked = await api.http.post(url, content=_chunks(b"x" * 10_000, 20))
        not_json = await api.http.post(url, content=b"{approved: yes", headers={"Content-Type": "application/json"})
        assert (wrong_type.status_code, wrong_type.json()["field"]) == (422, "amount")
        assert "field 'amount'" in wrong_type.json()["error"]
        assert (missing.status_code, missing.json()["field"]) == (422, "approved")
        assert (no_answer.status_code, no_answer.json()["field"]) == (422, "answer")
        assert (huge.status_code, huge.json()["field"]) == (413, "answer")
        assert chunked.status_code == 413
        assert not_json.status_code == 400
        assert (await api.http.get(f"/api/tasks/{task_id}")).json()["status"] == "open"
        assert (await run.describe()).status == "running"
        ok = await api.http.post(url, json={"answer": {"approved": True, "amount": 3}})
        again = await api.http.post(url, json={"answer": {"approved": False, "amount": 3}})
        assert ok.status_code == 200
        assert again.status_code == 409 and "already answered" in again.json()["error"]
        assert (await run.result()).amount == 3


async def _chunks(chunk: bytes, n: int) -> AsyncIterator[bytes]:
    for _ in range(n):  # no Content-Length: the limit must hold while streaming
        yield chunk


async def test_token_required_when_on(tether_client: tether.Client, api_with_token: Api) -> None:
    http = api_with_token.http
    assert (await http.get("/api/tasks")).status_code == 401
    assert (await http.get("/api/tasks", headers={"Authorization": "Bearer wrong"})).status_code == 401
    assert (await http.post("/api/tasks/x.1/answer", json={"answer": 1})).status_code == 401
    ok = await http.get("/api/tasks", headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and isinstance(ok.json()["tasks"], list)
    assert ok.request.headers["authorization"] == "Bearer s3cret"
    assert (await http.get("/api/tasks")).headers["www-authenticate"] == "Bearer"


def test_non_loopback_binding_requires_a_token() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    with pytest.raises(tether.ConfigError, match="TETHER_API_TOKEN"):
        check_binding("0.0.0.0", None)
    check_binding("0.0.0.0", "a-token")
    check_binding("127.0.0.1", None)


async def test_studio_can_extend_the_app(tether_client: tether.Client) -> None:
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def hello(request: object) -> PlainTextResponse:
        return PlainTextResponse("studio")

    app = create_app(tether_client, routes=[Route("/", hello)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        assert (await http.get("/")).text == "studio"
        assert (await http.get("/api/health")).json() == {"ok": True}


async def test_tasks_of_encrypted_runs_need_the_key(tether_server: DevServer) -> None:
    from tether.engine.codec import Keyring, build_codec, new_key

    queue = unique_queue()
    keyed = Connection(address=tether_server.address, task_queue=queue,
                       codec=build_codec(Keyring([new_key()])))
    other = Connection(address=tether_server.address, task_queue=queue,
                       codec=build_codec(Keyring([new_key()])))
    client = tether.Client(await keyed.connect(), keyed)
    async with tether.Worker(client):
        run = await client.start(flows.human_approval, "Secret question?")
        await wait_for_task(client, f"{run.id}.1")
        async for api in _serve(create_app(tether.Client(await other.connect(), other))):
            listed = (await api.http.get("/api/tasks", params={"run": run.id})).json()
            assert listed == {"tasks": [], "unreadable_runs": [run.id]}
            reply = await api.http.get(f"/api/tasks/{run.id}.1")
            assert reply.status_code == 500
            assert "which this process does not have" in reply.json()["error"]
            assert "Secret" not in reply.text
        await cancel(run)
