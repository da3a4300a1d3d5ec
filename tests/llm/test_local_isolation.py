"""The local model fails calls, never workers: patterns made grammar-safe, llama.cpp in a child process."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
from collections.abc import Callable

import pytest

import tether
from tests.apps import local_flows as app
from tether import llm
from tether.errors import ConfigError, RunFailed
from tether.llm import _local, _tooltext
from tether.llm._grammar import grammar_safe, translate
from tether.llm._llama_process import LlamaProcess, Request
from tether.llm._types import ToolSpec

SMOLLM2 = llm.parse_model("local:smollm2")


def model_process() -> LlamaProcess:
    return _local.process(SMOLLM2)


async def wait_until(check: Callable[[], bool], *, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def poll_until(check: Callable[[], bool], *, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# ---- patterns llama.cpp's grammar cannot read -----------------------------------------

TRANSLATED = [  # (pattern, what llama.cpp's grammar gets, a string both match)
    (r"^POL-\d{6}$", r"^POL-[0-9]{6}$", "POL-123456"),
    (r"POL-\d{6}", r"^POL-[0-9]{6}$", "POL-123456"),
    (r"^\d+\.\d{2}$", r"^[0-9]+[\x2E][0-9]{2}$", "339.15"),
    (r"^[\w.-]+@[\w-]+\.[a-z]{2,}$", r"^[a-zA-Z0-9_.-]+@[a-zA-Z0-9_-]+[\x2E][a-z]{2,}$", "a.b@acme.de"),
    (r"^(?:CL|PO)-\S+$", r"^(CL|PO)-[^ \x22\x5C\x00-\x1F]+$", "CL-7"),
    (r"^[^,]+$", r"^[^,\x22\x5C\x00-\x1F]+$", "no commas"),
    (r"^\(\d{3}\) \d{3}-\d{4}$", r"^[\x28][0-9]{3}[\x29] [0-9]{3}-[0-9]{4}$", "(555) 123-4567"),
    (r"a|b", r"^(a|b)$", "b"),
    (r"^x.+?y$", r"^x[^\x22\x5C\x00-\x1F]+y$", "x--y"),
]


@pytest.mark.parametrize(("pattern", "grammar", "example"), TRANSLATED)
def test_patterns_are_rewritten_into_what_the_grammar_reads(pattern: str, grammar: str, example: str) -> None:
    assert translate(pattern) == grammar
    assert translate(grammar) == grammar  # idempotent: tool schemas pass through it twice
    assert re.fullmatch(pattern, example) and re.fullmatch(grammar, example)


@pytest.mark.parametrize(("pattern", "why"), [
    (r"\bPOL-[0-9]{6}\b", r"\b (a word boundary)"),
    (r"^(?=POL)\w+$", "the look-around (?=...)"),
    (r"^(a)\1$", r"\1 (a back-reference)"),
    (r"^[\D]$", r"\D inside [...]"),
])
def test_what_cannot_be_expressed_is_refused_in_one_line_naming_field_and_pattern(pattern: str, why: str) -> None:
    schema = {"type": "object", "properties": {"claim": {"type": "object", "properties": {
        "policy_number": {"type": "string", "pattern": pattern}}}}}
    with pytest.raises(ConfigError) as caught:
        grammar_safe(schema, "Claim.")
    message = str(caught.value)
    assert message.startswith(f"Claim.claim.policy_number: pattern /{pattern}/ uses {why}, which local models'")
    assert "\n" not in message


def test_tool_argument_patterns_are_rewritten_and_refusals_name_the_tool() -> None:
    lookup = ToolSpec(name="lookup_policy", parameters={"type": "object", "properties": {
        "number": {"type": "string", "pattern": r"^POL-\d{6}$"}}})
    schema = _tooltext.action_schema([lookup], None)
    call = schema["anyOf"][0]["properties"]["tool_calls"]["items"]
    assert call["properties"]["arguments"]["properties"]["number"]["pattern"] == "^POL-[0-9]{6}$"
    lookup.parameters["properties"]["number"]["pattern"] = r"^POL\b"
    with pytest.raises(ConfigError, match=r"^tool 'lookup_policy', argument number: pattern /\^POL\\b/ uses \\b"):
        _tooltext.action_schema([lookup], None)


def test_every_rewritten_pattern_is_a_grammar_llama_cpp_parses() -> None:
    properties = {f"p{i}": {"type": "string", "pattern": p} for i, (p, _, _) in enumerate(TRANSLATED)}
    schema = grammar_safe({"type": "object", "properties": properties, "required": list(properties)})
    out = model_process().ask(Request({"kwargs": {"messages": [{"role": "user", "content": "hi"}],
                                                  "max_tokens": 1}, "schema": schema}))
    assert "ok" in out, out


def test_a_grammar_llama_cpp_cannot_parse_is_an_error_and_its_dump_stays_out_of_the_terminal(
        capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    # the schema as the user wrote it, not rewritten: llama.cpp's parser fails on `\d`
    raw = {"type": "object", "properties": {"policy_number": {"type": "string", "pattern": r"^POL-\d{6}$"}}}
    proc = model_process()
    caplog.set_level(logging.DEBUG, logger="tether.llm.local")
    out = proc.ask(Request({"kwargs": {"messages": [{"role": "user", "content": "POL-123456"}],
                                       "max_tokens": 8}, "schema": raw}))
    assert out["kind"] == "grammar"
    pid = proc.pid
    assert pid is not None  # it did not crash
    assert "error parsing grammar" not in capfd.readouterr().err
    # the grammar dump reaches the debug log (a thread reads the child's stderr)
    poll_until(lambda: any("error parsing grammar" in r.getMessage() for r in caplog.records))


# ---- through a worker ------------------------------------------------------------------

async def test_a_digit_pattern_on_the_local_model_gives_a_valid_value(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        out = await tether_client.run(app.read_policy, "Claim for policy POL-204518, water damage.")
    assert re.fullmatch(r"POL-\d{6}", out.policy_number)


async def test_an_inexpressible_pattern_fails_the_run_in_one_line_and_the_worker_lives(
        tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        with pytest.raises(RunFailed) as caught:
            await tether_client.run(app.read_bounded_policy, "Claim for policy POL-204518.")
        assert r"BoundedPolicy.policy_number: pattern /\bPOL-[0-9]{6}\b/ uses \b (a word boundary)" \
            in str(caught.value)
        assert "\n" not in str(caught.value)
        out = await tether_client.run(app.read_policy, "Claim for policy POL-204518, water damage.")
    assert re.fullmatch(r"POL-\d{6}", out.policy_number)


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGILL])
async def test_a_crash_inside_llama_cpp_fails_the_attempt_and_the_worker_lives(
        tether_client: tether.Client, sig: signal.Signals) -> None:
    # SIGSEGV: what a bug in libllama does; SIGILL: a build for instructions the machine refuses
    proc = model_process()
    async with tether.Worker(tether_client):
        await tether_client.run(app.tell_story, 4)  # the model process is up
        first, starts = proc.pid, proc.starts
        run = await tether_client.start(app.tell_story, 400)
        await wait_until(lambda: proc.busy)
        assert first is not None
        os.kill(first, sig)
        story = await run.result()
        detail = await run.describe()
        assert story.strip()
        (step,) = [s for s in detail.steps if s.name == llm.STEP_NAME]
        assert step.attempts == 2
        failure = step.last_failure or ""
        assert f"the llama.cpp process crashed (signal {sig.name}" in failure and "\n" not in failure
        assert ("CPU instructions this machine refuses" in failure) == (sig == signal.SIGILL), failure
        assert ("pip install --force-reinstall --no-cache-dir llama-cpp-python" in failure) == (sig == signal.SIGILL)
        assert proc.starts == starts + 1 and proc.pid not in (None, first)
        assert (await tether_client.run(app.tell_story, 4)).strip()  # and the next call works


async def test_cancelling_a_run_stops_its_generation_in_llama_cpp(tether_client: tether.Client) -> None:
    proc = model_process()
    async with tether.Worker(tether_client):
        await tether_client.run(app.tell_story, 4)
        run = await tether_client.start(app.tell_story, 400)
        await wait_until(lambda: proc.busy)
        generating = proc.pid
        await run.cancel()
        await wait_until(lambda: not proc.busy)
        assert proc.pid is None and generating is not None  # the process was stopped, not left writing the story
        with pytest.raises(ProcessLookupError):
            os.kill(generating, 0)
        assert (await tether_client.run(app.tell_story, 4)).strip()  # the next call starts it again


async def test_a_digit_pattern_in_a_tool_argument_constrains_the_local_model() -> None:
    lookup = ToolSpec(name="lookup_policy", description="Look up a policy by its number.",
                      parameters={"type": "object", "properties": {
                          "number": {"type": "string", "pattern": r"^POL-\d{6}$"}}, "required": ["number"]})
    call = llm.ModelCall(model="local:smollm2", tools=[lookup], temperature=0.0, max_tokens=60, messages=[
        llm.Message(role="user", content="Look up policy POL-204518 with the tool.")])
    reply = await _tooltext.complete(call, SMOLLM2, _local.complete)
    (made,) = reply.tool_calls or []
    assert made.name == "lookup_policy" and re.fullmatch(r"POL-\d{6}", made.arguments["number"])


def test_data_inside_a_schema_is_not_taken_for_a_pattern() -> None:
    schema = {"type": "object", "properties": {"rule": {"type": "object", "default": {"pattern": r"\bx"},
                                                        "properties": {"pattern": {"type": "string"}}}}}
    assert grammar_safe(schema) == schema
