"""Sensitive values across zones: a vault lookup, resolution by type, leaks the guard stops.

Handles passed where a step takes the plain type (`ssn: str`) arrive resolved in the step's zone,
and a plain value returned under `-> Sensitive[str]` is sealed: what these apps test, and what type
checkers cannot express, hence the `type: ignore`s on those lines (typed code takes `Sensitive[str]`
parameters and calls `reveal()`, and returns `tether.sensitive(...)`).
"""

from __future__ import annotations

from pydantic import BaseModel

import tether
from tether._sensitive import Sensitive

PEOPLE = {
    "c1": ("Ann Example", "123-45-6789", "Patient reports chronic migraine with aura since 2019."),
    "c2": ("Bo Sample", "987-65-4321", "History of type 2 diabetes, insulin dependent."),
}


class Customer(BaseModel):
    id: str
    name: str
    ssn: Sensitive[str]
    notes: Sensitive[str]


class Report(BaseModel):
    customer: Customer
    last4: str
    notes_words: int
    shown: str


@tether.step(runs_on="vault")
def sov_lookup(customer_id: str) -> Customer:
    name, ssn, notes = PEOPLE[customer_id]
    return Customer(id=customer_id, name=name, ssn=tether.sensitive(ssn, label="ssn", preview=True),
                    notes=tether.sensitive(notes, label="medical_notes"))


@tether.step(runs_on="vault")
def sov_last4(ssn: str) -> str:
    return ssn[-4:]


@tether.step(runs_on="vault")
def sov_count_words(customer: Customer) -> int:
    return len(customer.notes.reveal().split())


@tether.step(runs_on="vault")
def sov_ssn_of(customer_id: str) -> Sensitive[str]:
    return PEOPLE[customer_id][1]  # type: ignore[return-value]  # the annotation seals it


@tether.step(runs_on="vault")
def sov_leak(customer: Customer) -> str:
    return f"customer ssn is {customer.ssn.reveal()}"


@tether.step(runs_on="other")
def sov_other_zone(ssn: str) -> int:
    return len(ssn)


@tether.workflow
async def sov_report(customer_id: str) -> Report:
    customer = await sov_lookup(customer_id)
    last4 = await sov_last4(customer.ssn)  # type: ignore[arg-type]  # handle for a str param
    words = await sov_count_words(customer)
    return Report(customer=customer, last4=last4, notes_words=words, shown=f"{customer.ssn}")


@tether.workflow
async def sov_sealed(customer_id: str) -> str:
    handle = await sov_ssn_of(customer_id)
    last4 = await sov_last4(handle)  # type: ignore[arg-type]  # handle for a str param
    return last4 + " " + (handle.preview or "-") + " " + handle.label


@tether.workflow
async def sov_leaky(customer_id: str) -> str:
    return await sov_leak(await sov_lookup(customer_id))


@tether.workflow
async def sov_wrong_zone(customer_id: str) -> int:
    customer = await sov_lookup(customer_id)
    return await sov_other_zone(customer.ssn)  # type: ignore[arg-type]  # handle for a str param


@tether.workflow
async def sov_reveal_in_workflow(customer_id: str) -> str:
    customer = await sov_lookup(customer_id)
    return customer.ssn.reveal()


@tether.workflow
async def sov_prompt_with_handle(customer_id: str) -> str:
    customer = await sov_lookup(customer_id)
    tether._sensitive.check_egress([{"role": "user", "content": f"Assess {customer.name}, ssn {customer.ssn}"}],
                                  destination="openai:gpt-4.1-mini")
    return "sent"


@tether.step(runs_on="vault", attempts=2, non_retryable=[KeyError])
def sov_complain(customer: Customer) -> str:
    raise ValueError(f"ssn {customer.ssn.reveal()} failed the checksum")


@tether.workflow
async def sov_complaining(customer_id: str) -> str:
    return await sov_complain(await sov_lookup(customer_id))
