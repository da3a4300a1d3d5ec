"""Sensitive values meeting model calls: what the egress guard lets through and what it stops."""

from __future__ import annotations

from pydantic import BaseModel

import tether
from tests.apps.sov_vault import Customer, sov_lookup
from tether import llm


class Ask(BaseModel):
    customer_id: str
    model: str


@tether.workflow
async def sov_careless(ask: Ask) -> str:
    customer = await sov_lookup(ask.customer_id)
    reply = await llm.chat(f"Is {customer.name} (SSN {customer.ssn}) a fraud risk?", model=ask.model)
    return reply.text


@tether.workflow
async def sov_careful(ask: Ask) -> str:
    customer = await sov_lookup(ask.customer_id)
    reply = await llm.chat(f"Is a customer whose SSN ends {customer.ssn.preview} a fraud risk?", model=ask.model)
    return reply.text


@tether.step(runs_on="vault")
async def sov_vault_asks(customer: Customer, model: str) -> str:
    reply = await llm.chat(f"Reply OK if {customer.ssn.reveal()} looks like a US SSN.", model=model,
                           max_tokens=5)
    return reply.text[:20]


@tether.workflow
async def sov_vault_asks_model(ask: Ask) -> str:
    return await sov_vault_asks(await sov_lookup(ask.customer_id), ask.model)
