"""The SDK core without a server: durations, decorator checks, steps and workflows run directly."""

from __future__ import annotations

from datetime import timedelta

import pytest

import tether
from tests.apps import basics


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("5m", 300), ("2h", 7200), ("3d", 259200), ("1w", 604800), ("500ms", 0.5),
    ("1h30m", 5400), (" 2H ", 7200), (12, 12), (0.25, 0.25), (timedelta(minutes=1), 60),
])
def test_durations(text: object, seconds: float) -> None:
    assert tether.parse_duration(text).total_seconds() == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "5", "m", "5 minutes", "-5s", "5s3", True, None, [1]])
def test_bad_durations_name_the_fix(bad: object) -> None:
    with pytest.raises(tether.UsageError, match="duration"):
        tether.parse_duration(bad, what="timeout")  # type: ignore[arg-type]


def test_sync_step_runs_directly_outside_a_workflow() -> None:
    # a sync step's call is typed awaitable (for workflows); outside one it returns the value itself
    assert basics.double(21) == 42  # type: ignore[comparison-overlap]
    assert basics.price(basics.Order(id="x", amount=10)) == 11.9  # type: ignore[comparison-overlap]


async def test_async_step_runs_directly_outside_a_workflow() -> None:
    assert await basics.add(1, b=2) == 3


async def test_workflow_runs_inline_outside_temporal() -> None:
    out = await basics.order_total(basics.Order(id="o", amount=1000))
    assert out.tags == ["big"]
    assert await basics.fan_out(3) == [0, 2, 4]


def test_step_options_are_validated_at_decoration() -> None:
    with pytest.raises(tether.UsageError, match="timeout"):
        tether.step(timeout="soon")(lambda: None)
    with pytest.raises(tether.UsageError, match="max_attempts"):
        tether.step(attempts=0)(lambda: None)
    with pytest.raises(tether.UsageError, match="zone name"):
        tether.step(runs_on="Vault Zone")(lambda: None)
    with pytest.raises(tether.UsageError, match="exception classes"):
        tether.step(non_retryable=["ValueError"])(lambda: None)  # type: ignore[list-item]


def test_workflow_shape_is_checked() -> None:
    with pytest.raises(tether.UsageError, match="async def"):
        tether.workflow(lambda x: x)

    async def two(a: int, b: int) -> int:
        return a + b

    with pytest.raises(tether.UsageError, match="takes one input"):
        tether.workflow(two)


def test_duplicate_step_names_are_refused() -> None:
    def double(x: int) -> int:  # same name as basics.double, different function
        return x

    with pytest.raises(tether.UsageError, match="two steps are named 'double'"):
        tether.step(double)


def test_input_validation_names_the_field() -> None:
    with pytest.raises(tether.InvalidInput) as info:
        basics.order_total.validate_input({"id": "x", "amount": 1, "items": [1]})
    assert info.value.field == "items.0"
    with pytest.raises(tether.InvalidInput, match="needs an input"):
        basics.order_total.validate_input(None)
    assert basics.order_total.validate_input({"id": "x", "amount": 1})[0] == basics.Order(id="x", amount=1)


PUBLIC_API = {
    "Agent", "AgentCheckpoint", "AgentResult", "App", "Budget", "BudgetExceeded", "Client", "CloudModelBlocked",
    "ConfigError", "Connection",
    "DecryptionFailed", "DevServer", "Duration", "EgressBlocked", "Escalation", "HumanTask", "HumanTaskExpired",
    "InvalidAnswer", "InvalidInput", "MCPServerFailed", "MaxTurnsExceeded", "ModelError", "ModelOutputInvalid",
    "NoWorker", "RateLimit", "RetryPolicy", "Run", "RunCancelled", "RunDetail", "RunEvent", "RunFailed", "RunExists",
    "RunNotFound",
    "RunStuck",
    "RunSummary", "Sensitive",
    "SensitiveValueMissing", "ServerUnavailable", "Step", "StepFailed", "TaskClosed", "TaskNotFound", "TetherError",
    "Tool", "UnknownWorkflow", "UsageError", "Worker", "Workflow", "__version__", "ask_human", "attempt", "confirm",
    "continue_as_new", "decide", "escalate", "gather", "heartbeat", "idempotency_key", "in_workflow", "llm",
    "load_app", "log", "mcp",
    "note", "now", "parse_duration", "patched", "progress", "run_id",
    "sensitive", "sleep", "step", "tool", "uuid4", "wait_for",
    "workflow",
}


def test_public_api_is_pinned() -> None:
    """The exported names change only on purpose: update this list in the same commit."""
    assert set(tether.__all__) == PUBLIC_API
    assert len(tether.__all__) == len(PUBLIC_API), "no name exported twice"
    assert all(hasattr(tether, name) for name in tether.__all__)
