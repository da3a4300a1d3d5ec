"""A scripted model that handles examples/support_agent.py's emails the way a good model would."""

from __future__ import annotations

import json
import re
from typing import Any

from tether.llm import ModelCall
from tether.testing import ScriptedModel


def _support(call: ModelCall) -> Any:
    email = next(m.content for m in call.messages if m.role == "user")
    results = {m.name: m.content for m in call.messages if m.role == "tool"}
    if "crm_find_customer" not in results:
        sender = email.split("\n", 1)[0].removeprefix("From: ").strip()
        return {"tool_calls": [{"name": "crm_find_customer", "arguments": {"email": sender}}]}
    customer = json.loads(results["crm_find_customer"])["customer_id"]
    if "verify_customer" not in results:
        born = re.search(r"\d{4}-\d{2}-\d{2}", email)
        return {"tool_calls": [{"name": "verify_customer", "arguments": {
            "customer_id": customer, "date_of_birth": born.group(0) if born else "unknown"}}]}
    verified = results["verify_customer"] == "true"
    new_address = re.search(r"address to (.+?)\. ", email)
    if verified and new_address and "crm_update_address" not in results:
        return {"tool_calls": [{"name": "crm_update_address", "arguments": {
            "customer_id": customer, "address": new_address.group(1)}}]}
    changed = results.get("crm_update_address", "").startswith("address of")
    return {"final": {"customer_id": customer, "verified": verified, "address_changed": changed,
                      "reply": "Your address is updated." if changed else "We could not update your address."}}


SUPPORT = ScriptedModel("support-script", _support)
