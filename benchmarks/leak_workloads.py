"""The leak catalogue's steps and workflow: each way a vault step can try to let a value out.

Every step takes its planted value from the vault side (`PLANTED`, filled by
`benchmarks.leaks` in the worker's process) through `tether.sensitive()`, as a step
reading a private database does, then tries one way out.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from opentelemetry import trace
from pydantic import BaseModel

import tether
from tether import llm

PLANTED: dict[str, str] = {}
"""way -> the value planted for it (vault side)."""


class Attempt(BaseModel):
    way: str
    model: str


def _value(way: str) -> str:
    """The planted value, read from the vault side and marked sensitive (so the step revealed it)."""
    return tether.sensitive(PLANTED[way], label="secret").reveal()


_ACCOUNTS: dict[str, Any] = {}  # no account is ever found


def _raise_from(v: str) -> Any:
    try:
        return _ACCOUNTS[v]
    except KeyError as e:
        raise LookupError("no account") from e


def _raise_in_except(v: str) -> Any:
    try:
        return _ACCOUNTS[v]
    except KeyError:
        raise LookupError("no account")  # noqa: B904  # the implicit __context__ is the way out here


class _Number(BaseModel):
    number: int




def _log(v: str) -> str:
    logging.getLogger("bank.app").warning("checking customer %s", v)
    return "ok"


def _span(v: str) -> str:
    trace.get_current_span().set_attribute("customer.id", v)
    return "ok"


WAYS: dict[str, tuple[str, Callable[[str], Any]]] = {
    # way: (kind of planted value, what the step does with it)
    "error message": ("ssn", lambda v: (_ for _ in ()).throw(ValueError(f"ssn {v} failed the checksum"))),
    "error cause (raise ... from e)": ("ssn", _raise_from),
    "error context (raise in except)": ("ssn", _raise_in_except),
    "pydantic input_value": ("ssn", lambda v: _Number.model_validate({"number": v})),
    "result, exact": ("ssn", lambda v: f"customer {v}"),
    "repr (escaped newlines)": ("notes", lambda v: repr(v)),
    "json.dumps (ASCII escapes)": ("notes", lambda v: json.dumps({"notes": v})),
    "upper case": ("notes", lambda v: v.upper()),
    "separators removed": ("ssn", lambda v: v.replace("-", "")),
    "spaced out": ("ssn", lambda v: " ".join(v.replace("-", ""))),
    "as a number": ("ssn", lambda v: int(v.replace("-", ""))),
    "base64 in a longer text": ("notes", lambda v: base64.b64encode(f"doc: {v}".encode()).decode()),
    "hex": ("ssn", lambda v: v.encode().hex()),
    "url-encoded": ("notes", lambda v: "https://crm.example/?q=" + quote(v)),
    "dict key": ("ssn", lambda v: {v: True}),
    "log line": ("ssn", _log),
    "span attribute": ("ssn", _span),
    "short value (4 chars)": ("pin", lambda v: f"pin {v}"),
    "split in two": ("ssn", lambda v: [v[:6], v[6:]]),
    "reversed": ("ssn", lambda v: v[::-1]),
}
SPECIAL = {"heartbeat details": "ssn", "progress message": "ssn", "tool error to the cloud model": "ssn",
           "untyped handle in a prompt": "ssn"}


@tether.step(runs_on="vault")
def leak_step(way: str) -> Any:
    return WAYS[way][1](_value(way))


@tether.step(runs_on="vault", heartbeat="1s", attempts=1)
def leak_heartbeat(way: str) -> str:
    """Heartbeats once, then goes quiet: the timeout keeps the last details in the history for good."""
    tether.heartbeat(f"working on {_value(way)}")
    time.sleep(3)
    return "ok"


@tether.step(runs_on="vault", heartbeat="2s")
def leak_progress(way: str) -> str:
    """Reports progress naming the customer, then works on while watchers read it."""
    v = _value(way)
    for i in range(3):
        tether.progress(f"checking customer {v}: {i + 1} of 3", done=i + 1, total=3)
        time.sleep(0.3)
    return "ok"


@tether.step(runs_on="vault")
def leak_tool(customer_id: str) -> str:
    """Look up a customer's record."""
    v = _value("tool error to the cloud model")
    raise ValueError(f"no record for customer {customer_id} with ssn {v}")


@tether.step(runs_on="vault")
def leak_untyped(way: str):  # type: ignore[no-untyped-def]  # no return annotation: workflow code gets dicts
    return {"customer": {"ssn": tether.sensitive(PLANTED[way], label="ssn")}}


@tether.workflow
async def leak_attempt(attempt: Attempt) -> str:
    """Try one way, then forward whatever came back (result or error text) to the cloud model."""
    if attempt.way == "tool error to the cloud model":
        agent = tether.Agent(attempt.model, name="clerk", instructions="Check the customer.",
                             tools=[leak_tool], max_turns=3)
        return str((await agent.run("Check customer c-1")).output)
    if attempt.way == "heartbeat details":
        try:
            return await leak_heartbeat(attempt.way)
        except tether.StepFailed as exc:
            return str(exc)
    if attempt.way == "progress message":
        return await leak_progress(attempt.way)
    if attempt.way == "untyped handle in a prompt":
        found = await leak_untyped(attempt.way)
        return (await llm.chat(f"Check {found['customer']}", model=attempt.model)).text
    try:
        out: Any = await leak_step(attempt.way)
    except tether.StepFailed as exc:
        out = str(exc)
    return (await llm.chat(f"File this: {out}", model=attempt.model)).text
