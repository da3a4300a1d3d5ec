"""Human-task pieces that need no server: ids, answer validation, escalation schema, prompts."""

from __future__ import annotations

import io

import pytest
from pydantic import TypeAdapter

import tether
from tests.apps.human_flows import Approval, Quote
from tether._sensitive import Sensitive
from tether.cli import _questions as cli_questions
from tether.escalation import escalation_schema
from tether.human import _json, validate_answer
from tether.human_tasks import split_task_id


def test_task_ids_carry_their_run() -> None:
    assert split_task_id("process_invoice-3f2a.2") == ("process_invoice-3f2a", 2)
    assert split_task_id("parent/child-1.1") == ("parent/child-1", 1)
    for bad in ("nope", "run.x", ".3"):
        with pytest.raises(tether.UsageError, match="task ids look like"):
            split_task_id(bad)


def test_validation_names_the_first_bad_field() -> None:
    adapter = TypeAdapter(Approval)
    assert validate_answer(adapter, {"approved": True, "amount": 3})[0] == Approval(approved=True, amount=3)
    _, field, message = validate_answer(adapter, {"approved": True, "amount": "x", "comment": 5})
    assert field == "amount" and message.startswith("field 'amount': ") and "(and 1 more)" in message


def test_escalation_answers_without_retry_offer_use_and_fail_only() -> None:
    schema = TypeAdapter(escalation_schema(Quote, can_retry=False)).json_schema()
    assert {o["$ref"].rsplit("/", 1)[1] for o in schema["oneOf"]} == {"UseValue_Quote_", "FailRun"}
    adapter = TypeAdapter(escalation_schema(Quote, can_retry=False))
    assert validate_answer(adapter, {"action": "retry"})[1] == "action"


def test_sensitive_inputs_are_shown_as_handles() -> None:
    handle = Sensitive[str](zone="vault", id="abc123", label="iban", preview="DE** **** 1234")
    shown = _json({"iban": handle})
    assert shown == {"iban": {"kind": "tether.sensitive", "zone": "vault", "id": "abc123",
                              "label": "iban", "preview": "DE** **** 1234"}}


def test_prompts_follow_nested_and_union_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    schema = TypeAdapter(escalation_schema(Quote, can_retry=True)).json_schema()
    monkeypatch.setattr("sys.stdin", io.StringIO("shrug\nfail\nwrong supplier\n"))
    assert cli_questions.prompt_answer(schema) == {"action": "fail", "reason": "wrong supplier"}
    monkeypatch.setattr("sys.stdin", io.StringIO("retry\n"))
    assert cli_questions.prompt_answer(schema) == {"action": "retry"}
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n3\n\n"))
    assert cli_questions.prompt_answer(TypeAdapter(Approval).json_schema()) == {
        "approved": False, "amount": 3, "comment": ""}


def test_escalate_option_form_returns_a_policy() -> None:
    policy = tether.escalate(assignee="ops", timeout="1d")
    assert isinstance(policy, tether.Escalation) and policy.assignee == "ops"
    with pytest.raises(tether.UsageError):
        tether.escalate(timeout="soon")
