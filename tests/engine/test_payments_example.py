"""examples/payments.py against a deduplicating payment service whose first answer is lost."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import tether

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "payments.py"


class Ledger:
    """Charges once per Idempotency-Key; loses its first answer (503 after charging)."""

    def __init__(self) -> None:
        self.charges: dict[str, str] = {}
        self.keys: list[str] = []
        ledger = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key", "")
                ledger.keys.append(key)
                charge = ledger.charges.setdefault(key, f"ch-{body['order']}-{len(ledger.charges) + 1}")
                if len(ledger.keys) == 1:  # the charge happened, the answer is lost
                    self.send_response(503)
                    self.end_headers()
                    return
                data = json.dumps({"charge": charge}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/charges"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    service = Ledger()
    yield service
    service.server.shutdown()


async def test_a_retried_charge_is_charged_once(tether_client: tether.Client, ledger: Ledger) -> None:
    app = tether.load_app(str(EXAMPLE))
    pay = app.workflows["pay"]
    payment = {"order": "A-1", "amount_cents": 4200, "service_url": ledger.url}
    async with tether.Worker(tether_client, workflows=[pay], steps=list(app.steps.values())):
        run = await tether_client.start(pay, payment)
        assert await run.result() == "ch-A-1-1"
        detail = await run.describe()
    assert detail.steps[0].attempts == 2, "the first answer was lost, so the step was retried"
    assert len(ledger.keys) == 2 and ledger.keys[0] == ledger.keys[1] and ledger.keys[0].startswith("tether-")
    assert len(ledger.charges) == 1, "the service charged once"
