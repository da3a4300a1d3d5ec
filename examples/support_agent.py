"""Customer support by an agent: read an email, check the CRM, verify the customer, update the CRM.

- The CRM is a real MCP server (examples/crm_mcp_server.py, stdio) over a local SQLite file
  it creates (`CRM_DB`, default `.tether/crm.db`); it runs on the workers of zone `crm`.
- `verify_customer` runs in zone `vault`: it checks the date of birth the customer gives
  against a private identity file (`IDENTITY_DB`, default `.tether/identity-private.db`)
  that no other zone reads.
- Changing an address (the CRM's `update_address`) waits for a person's approval
  (`tether tasks` or Studio); a refusal goes back to the agent as the tool's result.
- Every model turn and every tool call is a durable step: kill the worker mid-run and the
  agent resumes where it was, without asking the model or calling a tool twice.

Run it (each zone in its own process, the local model by default, offline):

    tether dev examples/support_agent.py --separate-zones
    tether run examples/support_agent.py:handle_email --input @examples/support_email.json
    tether tasks                     # approve the address change

The model is `SUPPORT_MODEL` (default `local:smollm2`, SmolLM2-135M run in-process). A model
that small follows the tool protocol reliably (llama.cpp constrains every reply to a
well-formed call of a real tool, or a final answer of the right shape) but not the task:
it often skips steps or copies the wrong values. Use a larger model for real mail, e.g.
`SUPPORT_MODEL=mistral:mistral-small-latest` or an `openai-compatible:` endpoint.
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

import tether

MODEL = os.environ.get("SUPPORT_MODEL", "local:smollm2")
CRM_DB = os.environ.get("CRM_DB") or os.path.join(".tether", "crm.db")
CRM_SERVER = str(Path(__file__).with_name("crm_mcp_server.py"))

IDENTITIES = [("CU-1001", "1990-04-12"), ("CU-1002", "1986-12-09"), ("CU-1003", "1992-06-23")]


class Email(BaseModel):
    sender: str
    subject: str
    body: str


class SupportReply(BaseModel):
    customer_id: str = Field(description="The CRM id of the customer (CU-....), or '' if not found",
                             max_length=7)
    verified: bool = Field(description="Whether verify_customer confirmed the customer")
    address_changed: bool = Field(description="Whether update_address succeeded")
    reply: str = Field(description="A short answer to send to the customer", max_length=300)


class Handled(BaseModel):
    """What happened, from the tool results (not from what the model says happened)."""

    customer_id: str | None
    verified: bool
    address_changed: bool
    reply: str
    model_claims_match: bool = Field(description="Whether the agent's own summary agrees with the tool results")
    by: str = Field(description="'agent', or 'person' when the agent could not finish and someone wrote the reply")
    turns: int
    tool_calls: int
    model_calls: int


# ---- zone "vault": identity checks inside the perimeter -----------------------------------


def identity_db() -> str:
    """The private identity file (`IDENTITY_DB`), created with demo records on first use."""
    path = os.environ.get("IDENTITY_DB") or os.path.join(".tether", "identity-private.db")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE identities (customer_id TEXT PRIMARY KEY, date_of_birth TEXT)")
            db.executemany("INSERT INTO identities VALUES (?, ?)", IDENTITIES)
    return path


CustomerId = Annotated[str, Field(pattern=r"^CU-[0-9]{4}$")]
Day = Annotated[str, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]


@tether.step(runs_on="vault")
def verify_customer(customer_id: CustomerId, date_of_birth: Day) -> bool:
    """Check that a customer is who they say: their date of birth must match our records.

    Args:
        customer_id: The CRM id, e.g. CU-1001.
        date_of_birth: The date of birth the customer wrote, as YYYY-MM-DD.
    """
    with sqlite3.connect(identity_db()) as db:
        row = db.execute("SELECT date_of_birth FROM identities WHERE customer_id = ?",
                         (customer_id.strip(),)).fetchone()
    return row is not None and row[0] == date_of_birth.strip()


# ---- the agent ---------------------------------------------------------------------------

crm = tether.mcp.stdio([sys.executable, CRM_SERVER, "--db", CRM_DB], zone="crm", prefix="crm_",
                       allow=["find_customer", "update_address"], needs_approval=["update_address"],
                       approver="support-lead")

INSTRUCTIONS = """You handle customer emails for the support team, in this order:
1. Call crm_find_customer with the sender's email address.
2. Call verify_customer with the customer_id you found and the date of birth written in the email.
3. Only if verify_customer returned true and the email asks for a new address, call crm_update_address.
4. Give the final answer: customer_id, verified, address_changed and a one-sentence reply."""

support = tether.Agent(MODEL, name="support", instructions=INSTRUCTIONS, tools=[crm, verify_customer],
                       output_type=SupportReply, max_turns=6, temperature=0.0, max_tokens=160)


@tether.workflow
async def handle_email(email: Email) -> Handled:
    """Answer one customer email with the support agent; a person finishes what it cannot."""
    text = f"From: {email.sender}\nSubject: {email.subject}\n\n{email.body}"
    try:
        result = await support.run(text)
    except (tether.MaxTurnsExceeded, tether.ModelOutputInvalid) as exc:
        transcript = getattr(exc, "transcript", [])
        return await _by_person(email, facts_of(transcript), f"the agent could not finish ({type(exc).__name__})",
                                tool_calls=sum(1 for m in transcript if m.role == "tool"))
    facts = facts_of(result.transcript)
    said = result.output
    match = (said.customer_id or None, said.verified, said.address_changed) == \
        (facts["customer_id"], facts["verified"], facts["address_changed"])
    if not tether.decide("agent_claims_match_tools", match, claimed_verified=said.verified,
                         verified=facts["verified"], claimed_changed=said.address_changed,
                         changed=facts["address_changed"]):
        return await _by_person(email, facts, "the agent's summary disagrees with what its tools did",
                                tool_calls=result.tool_calls, turns=result.turns)
    return Handled(**facts, reply=said.reply, model_claims_match=True, by="agent", turns=result.turns,
                   tool_calls=result.tool_calls, model_calls=result.usage.calls)


async def _by_person(email: Email, facts: dict[str, Any], why: str, *, tool_calls: int, turns: int = 0) -> Handled:
    reply = await tether.ask_human(f"Support email from {email.sender}: {why}. Write the reply to the customer.",
                                   schema=str, assignee="support-lead", context={"email": email, **facts})
    return Handled(**facts, reply=reply, model_claims_match=False, by="person", turns=turns,
                   tool_calls=tool_calls, model_calls=0)


def facts_of(transcript: list[Any]) -> dict[str, Any]:
    """Customer, verification and address change as the tools reported them (workflow code)."""
    results = [(m.name, m.content) for m in transcript if m.role == "tool"]
    customer_id = None
    for name, content in results:
        if name == "crm_find_customer" and content.startswith("{"):
            customer_id = json.loads(content).get("customer_id")
            break
    return {"customer_id": customer_id,
            "verified": any(n == "verify_customer" and c == "true" for n, c in results),
            "address_changed": any(n == "crm_update_address" and c.startswith("address of") for n, c in results)}
