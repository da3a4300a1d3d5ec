"""Item 9, Studio off loopback: a chunked form over the size limit is refused whole (not cut short),
HTTPS with `Secure` cookies, logins that expire, and wrong tokens paced for everyone together
(guesses sent in parallel get no faster answers). Real Studio servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import tether
from tests.security._ways_support import cli, end, waiting_run
from tether.engine.devserver import free_port
from tether.studio import create_studio, start_background

TOKEN = "studio-limits-token-0123"


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    yield b"csrf=CSRF&f.approved=true&f.amount=1&f.comment="
    for _ in range(total // size):  # no Content-Length: sent with Transfer-Encoding: chunked
        yield b"x" * size


async def test_a_chunked_form_over_the_limit_is_refused_not_cut(tether_client: tether.Client) -> None:
    app = create_studio(tether_client)
    running = await start_background(app, port=free_port())
    async with tether.Worker(tether_client):
        run, task_id = await waiting_run(tether_client)
        try:
            async with httpx.AsyncClient(base_url=running.url, timeout=60) as browser:
                await browser.get(f"/inbox/{task_id}")
                csrf = browser.cookies["tether_csrf"]
                body = _chunks(2 * 1024 * 1024)
                r = await browser.post(f"/inbox/{task_id}", content=_replace_csrf(body, csrf),
                                       headers={"Content-Type": "application/x-www-form-urlencoded"})
                assert r.status_code == 413, r.text[:300]
                assert "limit" in r.text
                assert (await tether_client.tasks.get(task_id)).status == "open"
                # a small Content-Length beside `Transfer-Encoding: chunked`: the server reads the chunks
                form = f"csrf={csrf}&f.approved=true&f.amount=1&f.comment=".encode() + b"x" * 2 * 1024 * 1024
                status = await _raw_post(running.url, f"/inbox/{task_id}", form, csrf, [
                    "Content-Length: 40", "Transfer-Encoding: chunked"])
                assert status == 413
                assert (await tether_client.tasks.get(task_id)).status == "open"
                # a small chunked form is read whole and answers
                small = await browser.post(f"/inbox/{task_id}", content=_replace_csrf(_chunks(0), csrf) ,
                                           headers={"Content-Type": "application/x-www-form-urlencoded"})
                assert small.status_code == 303, small.text[:300]
        finally:
            await end(tether_client, run)
            await running.stop()


async def _raw_post(url: str, path: str, body: bytes, csrf: str, headers: list[str]) -> int:
    """POST over a bare socket (httpx would not send both framing headers); returns the status code."""
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Cookie: tether_csrf={csrf}",
            "Content-Type: application/x-www-form-urlencoded", *headers, "", ""]
    writer.write("\r\n".join(head).encode() + b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n")
    with contextlib.suppress(ConnectionError):  # refused before the whole body was read
        await writer.drain()
    status = (await asyncio.wait_for(reader.readline(), 30)).split()[1]
    writer.close()
    return int(status)


async def _replace_csrf(chunks: AsyncIterator[bytes], csrf: str) -> AsyncIterator[bytes]:
    async for c in chunks:
        yield c.replace(b"CSRF", csrf.encode())


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def test_https_with_secure_cookies_and_logins_that_expire(tether_client: tether.Client,
                                                                tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    app = create_studio(tether_client, token=TOKEN, session_ttl=3600)
    running = await start_background(app, port=free_port(), token=TOKEN, https_cert=cert, https_key=key)
    try:
        assert running.url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(base_url=running.url, verify=trust, timeout=60) as browser:
            form = await browser.get("/login")
            assert "secure" in form.headers["set-cookie"].lower()  # the CSRF cookie
            logged = await browser.post("/login", data={"token": TOKEN, "csrf": browser.cookies["tether_csrf"]})
            assert logged.status_code == 303
            cookie = logged.headers["set-cookie"].lower()
            assert "tether_session=" in cookie and "; secure" in cookie and "max-age=3600" in cookie
            assert (await browser.get("/runs")).status_code == 200
            # an hour and a bit later, the same cookie no longer opens anything
            sessions = app.state.studio.sessions
            later = time.monotonic() + 3601
            sessions.clock = lambda: later
            expired = await browser.get("/runs")
            assert expired.status_code == 303 and expired.headers["location"].startswith("/login")
            assert (await browser.get("/api/tasks")).status_code == 401
    finally:
        await running.stop()
    code, _, err = await cli("studio", "--https-cert", str(cert), "--address", tether_client.connection.address)
    assert code == 1 and "--https-key" in err and "Traceback" not in err


async def test_wrong_tokens_are_paced_for_everyone_together(tether_client: tether.Client) -> None:
    delay, guesses = 0.1, 40
    app = create_studio(tether_client, token=TOKEN, loopback_only=False, wrong_token_delay=delay)
    running = await start_background(app, port=free_port(), token=TOKEN)
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=120) as http:
            await http.get("/login")
            csrf = http.cookies["tether_csrf"]

            async def guess(i: int) -> int:
                if i % 2:
                    r = await http.get("/api/tasks", headers={"Authorization": f"Bearer guess-{i:04d}-xxxxxxxx"})
                else:
                    r = await http.post("/login", data={"token": f"guess-{i:04d}-xxxxxxxx", "csrf": csrf})
                return r.status_code

            began = time.monotonic()
            codes = await asyncio.gather(*(guess(i) for i in range(guesses)))
            took = time.monotonic() - began
            assert set(codes) == {401}
            # one wrong guess per `delay`, whoever sends them: 40 in parallel take as long as 40 in a row
            assert took >= (guesses - 1) * delay * 0.95, f"{guesses} parallel guesses answered in {took:.2f}s"
            assert (await http.get("/api/tasks", headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200
    finally:
        await running.stop()
