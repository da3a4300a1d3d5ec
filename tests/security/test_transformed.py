"""Issue 12, item 2: a zone step's result fails closed when it carries a transformed form of a
value the step revealed (repr/JSON escaping, case, separators, base64, hex, URL-encoding,
dict keys), and short values are never previewed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from pathlib import Path

import pytest

import tether
from tests.apps import sec_leaks as app
from tests.security._leak_support import connect, raw_history, vault_file
from tether._sensitive import mask
from tether.engine.devserver import DevServer
from tether.errors import UsageError
from tether.testing import unique_queue

__all__ = ["vault_file"]  # fixtures


def _forms(value: str, way: str) -> list[bytes]:
    """What would reveal `value` in the server's copy of the history, for each way."""
    out = app.TRANSFORMS[way](value)
    text = json.dumps(out) if not isinstance(out, str) else out
    return [text.encode(), json.dumps(text).encode()[1:-1]]


async def test_transformed_values_are_blocked(tether_server: DevServer, tmp_path: Path, vault_file: Path) -> None:
    queue = unique_queue("sec")
    plain = await connect(tether_server.address, queue, None, tmp_path / "payloads")  # the server sees all
    ways = list(app.TRANSFORMS)
    async with tether.Worker(plain, workflows=[app.sec_transformed], steps=[]), \
            tether.Worker(plain, queues=["vault"], workflows=[]):
        runs = [await plain.start(app.sec_transformed, {"way": way}) for way in ways]
        for run in runs:
            with contextlib.suppress(tether.RunFailed):
                await asyncio.wait_for(run.result(), 60)
    outcomes = {}
    for way, run in zip(ways, runs, strict=True):
        try:
            outcomes[way] = f"passed: {await run.result()}"
        except tether.RunFailed as exc:
            outcomes[way] = exc.error_type if "EgressBlocked" in str(exc) else str(exc)
        value = app.NOTES if way in ("repr", "json") else app.SSN
        stored = await raw_history(plain, run.id)
        assert [f for f in _forms(value, way) if f in stored] == [], way
    assert outcomes == dict.fromkeys(ways, "StepFailed")


def test_short_values_are_never_previewed() -> None:
    assert mask("4821") == "****"
    assert mask("48-21") == "**-**"
    assert mask("123-45-6789") == "***-**-6789"  # long values keep their last digits
    assert mask("A1B2C") == "***2C"  # never more than half
    pin = tether.sensitive("4821", label="pin", preview=True)  # outside a worker: the local vault
    assert pin.preview == "****" and "4821" not in str(pin)


def test_a_preview_that_is_the_value_is_refused() -> None:
    with pytest.raises(UsageError, match="preview of sensitive value 'pin' contains the value"):
        tether.sensitive("4821", label="pin", preview=lambda v: f"PIN {v}")
    with pytest.raises(UsageError, match="contains the value"):
        tether.sensitive("123-45-6789", label="ssn", preview="SSN 123 45 6789")


def test_base64_of_the_value_inside_a_longer_message_is_found() -> None:
    from tether import _forms

    for prefix in ("", "a", "ab", "abc"):
        blob = base64.b64encode(f"{prefix}{app.SSN} trailing".encode()).decode()
        assert _forms.find([blob], [(app.SSN, "ssn", "vault")]) is not None, prefix
    assert _forms.find(["nothing to see 123-45"], [(app.SSN, "ssn", "vault")]) is None
