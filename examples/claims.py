"""Insurance claims, sovereign: the brain decides on summaries, the people stay in the vault.

- A private SQLite database (created by the example; `CLAIMS_DB`, default
  `.tether/claims-private.db`) holds customers with their SSN and medical notes.
- `open_claim` runs in zone `vault` (inside the insurer's perimeter): it looks the customer
  up, keeps the SSN and the notes as sensitive values (they go into the vault; handles
  travel) and has the local model turn the notes into a fixed-form assessment.
- The workflow, the brain, may run in someone else's cloud: it asks a cloud model for a
  decision from the claim and that assessment only, never from the notes or the SSN.
- `record_decision` runs in `vault` again: it writes the decision next to the SSN.

Run it with each zone in its own process (the `vault` worker is the perimeter):

    tether dev examples/claims.py --separate-zones
    tether run examples/claims.py:process_claim --input \
        '{"claim_id": "CL-1", "customer_id": "C-0001", "amount": 1800, "category": "hospital"}'

The decision model is `CLAIMS_DECISION_MODEL` (default `mistral:mistral-small-latest`,
which needs `MISTRAL_API_KEY`; any `provider:model` works, e.g. an `openai-compatible:`
endpoint). The vault's model is `CLAIMS_LOCAL_MODEL` (default `local:smollm2`, offline).
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

import tether
from tether import llm
from tether._sensitive import Sensitive

DECISION_MODEL = os.environ.get("CLAIMS_DECISION_MODEL", "mistral:mistral-small-latest")
LOCAL_MODEL = os.environ.get("CLAIMS_LOCAL_MODEL", "local:smollm2")

DEMO_CUSTOMERS = [
    ("C-0001", "Ada Example", "078-05-1120", 7, "Admitted after a fall; fractured left wrist, cast applied. "
                                                "No prior conditions."),
    ("C-0002", "Ben Sample", "219-09-9999", 2, "Long-standing type 2 diabetes; foot ulcer treated in clinic."),
    ("C-0003", "Cleo Demo", "457-55-5462", 12, "Routine dental extraction, no complications."),
]


class Claim(BaseModel):
    claim_id: str
    customer_id: str
    amount: float = Field(gt=0)
    category: Literal["hospital", "outpatient", "pharmacy", "dental"]


class Assessment(BaseModel):
    """What may leave the vault about the medical notes: fixed choices, no free text."""

    severity: Literal["minor", "moderate", "severe"]
    pre_existing_condition: bool
    related_to_claim: bool


class ClaimFacts(BaseModel):
    claim: Claim
    tenure_years: int
    ssn: Sensitive[str]
    notes: Sensitive[str]
    assessment: Assessment


class Decision(BaseModel):
    approve: bool
    payout: float = Field(ge=0)
    reason: str = Field(max_length=400)


class Outcome(BaseModel):
    claim_id: str
    approved: bool
    payout: float
    reason: str
    assessment: Assessment
    recorded: str


# ---- the private database (inside the perimeter) -----------------------------------------


def private_db() -> str:
    """Path of the private database (`CLAIMS_DB`), seeded with demo customers on first use."""
    path = os.environ.get("CLAIMS_DB") or os.path.join(".tether", "claims-private.db")
    if not os.path.exists(path):
        seed(path, DEMO_CUSTOMERS)
    return path


def seed(path: str, customers: list[tuple[str, str, str, int, str]]) -> None:
    """Create the private database with `(id, name, ssn, tenure_years, medical_notes)` rows."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE IF NOT EXISTS customers (id TEXT PRIMARY KEY, name TEXT, ssn TEXT, "
                   "tenure_years INTEGER, medical_notes TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS decisions (claim_id TEXT PRIMARY KEY, ssn TEXT, approved INTEGER, "
                   "payout REAL, reason TEXT, decided_at TEXT)")
        db.executemany("INSERT OR REPLACE INTO customers VALUES (?, ?, ?, ?, ?)", customers)


# ---- zone "vault": the hands ------------------------------------------------------------

ASSESS = ("You read a patient's medical notes for an insurer. Judge how severe the condition is, "
          "whether it existed before, and whether it relates to the claimed treatment.")


@tether.step(runs_on="vault", timeout="3m")
async def open_claim(claim: Claim) -> ClaimFacts:
    """Look the customer up and assess the notes with the local model, inside the perimeter."""
    with sqlite3.connect(private_db()) as db:
        row = db.execute("SELECT ssn, tenure_years, medical_notes FROM customers WHERE id = ?",
                         (claim.customer_id,)).fetchone()
    if row is None:
        raise tether.UsageError(f"no customer {claim.customer_id!r} in the private database")
    ssn, tenure, notes = row
    ssn_handle = tether.sensitive(ssn, label="ssn", preview=True)
    notes_handle = tether.sensitive(notes, label="medical_notes")
    assessment = await llm.structured(
        Assessment, f"Claimed treatment: {claim.category}.\nMedical notes: {notes}",
        model=LOCAL_MODEL, system=ASSESS, temperature=0.0, max_tokens=80)
    return ClaimFacts(claim=claim, tenure_years=tenure, ssn=ssn_handle, notes=notes_handle,
                      assessment=assessment)


@tether.step(runs_on="vault")
def record_decision(claim_id: str, ssn: Sensitive[str], decision: Decision) -> str:
    """Write the decision next to the customer's SSN (the handle reveals it here, in the vault, only)."""
    with sqlite3.connect(private_db()) as db:
        db.execute("INSERT OR REPLACE INTO decisions VALUES (?, ?, ?, ?, ?, ?)",
                   (claim_id, ssn.reveal(), int(decision.approve), decision.payout, decision.reason,
                    datetime.now(UTC).isoformat(timespec="seconds")))
    return f"decision for {claim_id} recorded in the private database"


# ---- the brain --------------------------------------------------------------------------

POLICY = ("You decide health insurance claims. Approve claims related to the assessed condition "
          "unless the condition is pre-existing and the customer has been insured for under 3 years. "
          "The payout is at most the claimed amount.")


def decision_prompt(facts: ClaimFacts) -> str:
    """The cloud model's whole view of a claim: no names, no SSN, no medical notes."""
    a = facts.assessment
    return (f"Claim {facts.claim.claim_id}: {facts.claim.category}, amount {facts.claim.amount:.2f}. "
            f"Customer insured for {facts.tenure_years} years. Assessment from the medical file: "
            f"severity {a.severity}; pre-existing condition: {'yes' if a.pre_existing_condition else 'no'}; "
            f"related to the claimed treatment: {'yes' if a.related_to_claim else 'no'}.")


@tether.workflow
async def process_claim(claim: Claim) -> Outcome:
    """Open the claim in the vault, decide on the summary with the cloud model, record it."""
    facts = await open_claim(claim)
    decision = await llm.structured(Decision, decision_prompt(facts), model=DECISION_MODEL,
                                    system=POLICY, temperature=0.0)
    payout = min(decision.payout, claim.amount) if decision.approve else 0.0
    decision = decision.model_copy(update={"payout": payout})
    recorded = await record_decision(claim.claim_id, facts.ssn, decision)
    return Outcome(claim_id=claim.claim_id, approved=decision.approve, payout=payout,
                   reason=decision.reason, assessment=facts.assessment, recorded=recorded)
