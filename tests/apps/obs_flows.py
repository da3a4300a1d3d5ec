"""Workflows, steps and scripted models used by the observability tests (in-process and subprocess workers).

Handles passed where a step takes the plain type (`ssn: str`) arrive resolved in the step's zone,
and a plain value returned under `-> Sensitive[str]` is sealed: what these apps test, and what type
checkers cannot express, hence the `type: ignore`s on those lines (typed code takes `Sensitive[str]`
parameters and calls `reveal()`, and returns `tether.sensitive(...)`).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel
from temporalio import activity

import tether
from tether import llm, observe
from tether._sensitive import Sensitive, check_egress, declare_destination
from tether.errors import EgressBlocked, ModelError
from tether.testing import ScriptedModel

FAST = tether.RetryPolicy(max_attempts=3, initial_interval="50ms", max_interval="100ms")


class Fields(BaseModel):
    supplier: str
    total: float


class Report(BaseModel):
    doubled: int
    supplier: str
    summary: str
    customer: str
    reviewed: bool


# ---- scripted models -----------------------------------------------------------------

REPAIR = ScriptedModel("obs-repair", lambda call: '{"supplier": "ACME"' if call.repair == 0
                       else '{"supplier": "ACME", "total": 250.0}')
"""Answers malformed JSON first, valid JSON when asked to repair."""

DOWN = ScriptedModel("obs-down", lambda call: ModelError("obs-down: service unavailable",
                                                         model="scripted:obs-down", retryable=False))
"""Always fails for good (so the chain falls back)."""

UP = ScriptedModel("obs-up", lambda call: f"summary of {call.messages[-1].content}")
llm.set_price(UP.model, input=1000.0, output=2000.0)  # USD per million tokens: costs show in traces


# ---- steps -------------------------------------------------------------------------------


@tether.step(attempts=FAST)
def obs_flaky(n: int) -> int:
    """Fails on its first two attempts."""
    attempt = activity.info().attempt
    if attempt < 3:
        raise RuntimeError(f"flaky: attempt {attempt} failed")
    return n * 2


@tether.step
def obs_lookup_customer(supplier: str) -> str:
    """The step-tool stand-in: a step called on a model's behalf."""
    tether.log.info("looking up %s", supplier)
    return f"customer-of-{supplier}"


@tether.step(runs_on="obszone")
def obs_zone_step(text: str) -> str:
    return f"zoned:{text}"


@tether.step
def obs_noop(i: int) -> int:
    return i


# ---- workflows ---------------------------------------------------------------------------


@tether.workflow
async def obs_explained(text: str) -> Report:
    """A retried step, a structured call needing one repair, a fallback, a tool call and a decision."""
    llm.configure(attempts=FAST)
    doubled = await obs_flaky(21)
    fields = await llm.structured(Fields, text, model=REPAIR.model)
    summary = await llm.chat(f"summarise {fields.supplier}", model=DOWN.model, fallbacks=[UP.model])
    with observe.tool_call("lookup_customer", call_id="call-1"):
        customer = await obs_lookup_customer(fields.supplier)
    reviewed = tether.decide("high_total", fields.total > 100, total=fields.total, limit=100)
    if reviewed:
        tether.note("routed to manual review", supplier=fields.supplier)
    return Report(doubled=doubled, supplier=fields.supplier, summary=summary.text, customer=customer,
                  reviewed=reviewed)


@tether.workflow
async def obs_zoned(text: str) -> str:
    """One step on the main queue, one in zone 'obszone' (served by another process in tests)."""
    first = await obs_noop(1)
    return await obs_zone_step(f"{text}-{first}")


@tether.workflow
async def obs_pause(seconds: float) -> int:
    """A step, logs and a note, a sleep (so another worker can take the run over), then a step."""
    first = await obs_noop(1)
    tether.log.info("before the pause")
    logging.getLogger("tests.obs").info("plain logging before the pause")
    tether.note("pausing", seconds=seconds)
    await tether.sleep(seconds)
    tether.log.info("after the pause")
    return first + await obs_noop(7)


# ---- a sensitive value in the run (the export must never carry it) -----------------------

SECRET = "631-07-4479"
"""A planted SSN: it is stored, revealed, logged, noted, sent to an in-zone model and put in an
error inside the zone; no exported span, metric or log line may contain it."""

VAULT_MODEL = ScriptedModel("obs-vault-model", lambda call: f"checked: {call.messages[-1].content}")
declare_destination(VAULT_MODEL.model, zone="obsvault")  # this model runs inside the vault zone


@tether.step(runs_on="obsvault")
def obs_fetch_secret(customer: str) -> Sensitive[str]:
    return SECRET  # type: ignore[return-value]  # the annotation seals it


@tether.step(runs_on="obsvault", attempts=FAST)
async def obs_vault_check(ssn: str) -> str:
    tether.log.info("checking %s for the customer", ssn)
    tether.note("checked the value in the vault", value=ssn)
    reply = await llm.chat(f"Is {ssn} a valid SSN?", model=VAULT_MODEL.model)
    if activity.info().attempt == 1:
        raise ValueError(f"first try failed for {ssn}")
    return "valid" if reply.text.startswith("checked") else "invalid"


@tether.step(runs_on="obsother")
def obs_other_zone(ssn: str) -> int:
    return len(ssn)


@tether.workflow
async def obs_secret(customer: str) -> str:
    handle = await obs_fetch_secret(customer)
    tether.note("fetched the customer's SSN", ssn=handle)
    checked = await obs_vault_check(handle)  # type: ignore[arg-type]  # handle for a str param
    try:
        await obs_other_zone(handle)  # type: ignore[arg-type]  # handle for a str param
    except tether.StepFailed as exc:
        tether.note("another zone may not see it", error=exc.error_type)
    return checked


@tether.workflow
async def obs_careless(customer: str) -> str:
    """Workflow code that tries to send a handle out twice: once caught, once not."""
    handle = await obs_fetch_secret(customer)
    try:
        check_egress(f"Is {handle} valid?", destination="openai:gpt-first")
    except EgressBlocked as exc:
        observe.egress_blocked(exc)
        tether.note("kept the SSN inside the vault")
    check_egress(f"Is {handle} valid?", destination="openai:gpt-second")
    return "sent"


# ---- an agent: model turns and tool calls in the trace -----------------------------------


def _agent_script(call: llm.ModelCall) -> dict[str, Any]:
    if not any(m.role == "tool" for m in call.messages):
        return {"tool_calls": [{"name": "obs_lookup_customer", "arguments": {"supplier": "ACME"}},
                               {"name": "obs_lookup_customer", "arguments": {"supplier": "Initech"}}]}
    return {"final": "; ".join(m.content for m in call.messages if m.role == "tool")}


AGENT_MODEL = ScriptedModel("obs-agent", _agent_script)
helper = tether.Agent(AGENT_MODEL.model, name="helper", tools=[obs_lookup_customer], max_turns=3)


@tether.workflow
async def obs_agent(task: str) -> str:
    return str((await helper.run(task)).output)
