"""Zone steps that try to let a sensitive value out, the ways real code does (issue 12).

Handles passed where a step takes the plain type (`ssn: str`) arrive resolved in the step's zone:
what these apps rely on, and what type checkers cannot express, hence the `type: ignore`s on those
lines (typed code takes `Sensitive[str]` parameters and calls `reveal()`).
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel

import tether
from tether import llm

SSN = "123-45-6789"
NOTES = "Patient reports chronic migraine with aura since 2019.\nReferred to neurology."


class Ask(BaseModel):
    way: str
    model: str = ""
    release: str = ""  # a file whose appearance lets a waiting step finish


class Account(BaseModel):
    number: int


@tether.step(runs_on="vault")
def sec_lookup(way: str) -> tether.Sensitive[str]:
    return tether.sensitive(NOTES, label="notes") if way == "notes" else tether.sensitive(SSN, label="ssn")


@tether.step(runs_on="vault")
def sec_find_account(ssn: str) -> str:
    accounts: dict[str, str] = {}
    try:
        return accounts[ssn]
    except KeyError as e:  # written the way ruff's B904 asks
        raise LookupError("no account") from e


@tether.step(runs_on="vault")
def sec_validate(ssn: str) -> int:
    return Account.model_validate({"number": ssn}).number  # pydantic quotes input_value


TRANSFORMS: dict[str, Any] = {
    "exact": lambda v: f"value {v}",
    "repr": lambda v: repr(v),
    "json": lambda v: json.dumps({"v": v}),
    "upper": lambda v: v.upper(),
    "separators": lambda v: v.replace("-", "").replace(" ", "").replace("\n", ""),
    "spaced": lambda v: " ".join(v.replace("-", "")),
    "base64": lambda v: "data:" + base64.b64encode(f"x{v}".encode()).decode(),
    "hex": lambda v: v.encode().hex().upper(),
    "url": lambda v: "https://example.test/?q=" + quote(v),
    "dict key": lambda v: {v: 1},
}


@tether.step(runs_on="vault")
def sec_transform(value: str, way: str) -> Any:
    return TRANSFORMS[way](value)


@tether.workflow
async def sec_cause(ask: Ask) -> str:
    return await sec_find_account(await sec_lookup(ask.way))  # type: ignore[arg-type]  # handle for a str param


@tether.workflow
async def sec_pydantic(ask: Ask) -> int:
    return await sec_validate(await sec_lookup(ask.way))  # type: ignore[arg-type]  # handle for a str param


@tether.workflow
async def sec_transformed(ask: Ask) -> Any:
    handle = await sec_lookup("notes" if ask.way in ("repr", "json") else "ssn")
    return await sec_transform(handle, ask.way)


# ---- handles that lost their type ----------------------------------------------------------


@tether.step(runs_on="vault")
def sec_untyped(way: str):  # type: ignore[no-untyped-def]  # no return annotation: workflow code gets dicts
    return {"customer": {"ssns": [tether.sensitive(SSN, label="ssn")]}}


@tether.workflow
async def sec_untyped_prompt(ask: Ask) -> str:
    found = await sec_untyped(ask.way)
    handle = found["customer"]["ssns"][0]
    text = {"dict": f"check {handle}", "list": f"check {found['customer']['ssns']}",
            "json": f"check {json.dumps(found)}"}[ask.way]
    return (await llm.chat(text, model=ask.model)).text


# ---- heartbeats ------------------------------------------------------------------------------


@tether.step(runs_on="vault", heartbeat="30s")
def sec_beat(ssn: str, release: str) -> int:
    beats = 0
    while not os.path.exists(release):  # the test lets the step finish once it has read the details
        tether.heartbeat(f"working on {ssn}", {"ssn": ssn.replace("-", "")})
        beats += 1
        time.sleep(0.1)
    return beats


@tether.workflow
async def sec_heartbeat(ask: Ask) -> int:
    return await sec_beat(await sec_lookup("ssn"), ask.release)  # type: ignore[arg-type]  # handle for a str param


@tether.step(runs_on="vault", heartbeat="30s")
def sec_progress(ssn: str, release: str) -> int:
    done = 0
    while not os.path.exists(release):
        done += 1
        tether.progress(f"checking {ssn} ({ssn.replace('-', '')})", done=done)
        time.sleep(0.1)
    return done


@tether.workflow
async def sec_progressing(ask: Ask) -> int:
    return await sec_progress(await sec_lookup("ssn"), ask.release)  # type: ignore[arg-type]  # handle for a str param


# ---- plaintext refused -----------------------------------------------------------------------


@tether.step
def sec_touch(path: str) -> str:
    Path(path).write_text("ran")
    return "ran"


@tether.workflow
async def sec_plain(path: str) -> str:
    return await sec_touch(path)


# ---- a vault tool's error, sent back to the cloud model as the tool result -------------------------


@tether.step(runs_on="vault")
def sec_vault_record(customer_id: str) -> str:
    """Look up a customer's record."""
    ssn = tether.sensitive(SSN, label="ssn").reveal()  # read from the private database
    raise ValueError(f"no record for {customer_id}: ssn {ssn.replace('-', '')} unknown")


@tether.workflow
async def sec_agent_tool_error(ask: Ask) -> str:
    agent = tether.Agent(ask.model, name="clerk", instructions="Check the customer.", tools=[sec_vault_record],
                         max_turns=3)
    return str((await agent.run("Check customer c-1")).output)
