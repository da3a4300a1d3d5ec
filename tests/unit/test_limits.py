"""Rate limits: declared values are checked at once, model calls find their key, queues name their key."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import tether
from tests.apps import limits_flows
from tether import _runtime, limits, llm
from tether.engine.limits import cooldown_reason, cooldown_until, served_keys
from tether.llm._limits import routed
from tether.llm._step import call_model


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"per_second": -1, "key": "k"}, "rate limit 'k': per_second must be a positive number"),
    ({"per_second": 0, "key": "k"}, "per_second must be a positive number"),
    ({"per_second": float("inf")}, "per_second must be a positive number"),
    ({"per_second": True}, "per_second must be a positive number"),
    ({"max_concurrent": 0}, "max_concurrent must be an int of at least 1"),
    ({"max_concurrent": 2.5}, "max_concurrent must be an int of at least 1"),
    ({"key": "k"}, "needs per_second= and/or max_concurrent="),
    ({"per_second": 1, "key": ""}, "rate limit key must be a non-empty string"),
    ({"per_second": 1, "key": "payments api"}, "without spaces"),
    ({"per_second": 1, "key": "a#b"}, "without spaces or '#'"),
])
def test_bad_rate_limits_are_one_line_usage_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(tether.UsageError, match=message) as info:
        tether.RateLimit(**kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("model", "message"), [
    ("openai", "not a 'provider:model' string"),
    ("", "not a 'provider:model' string"),
    ("nope:*", "rate limit pattern 'nope:\\*': write 'provider:model'"),
    ("openai:", "not a 'provider:model' string"),
    ("*gpt", "rate limit pattern"),
])
def test_bad_model_patterns_are_refused(model: str, message: str) -> None:
    with pytest.raises(tether.UsageError, match=message):
        llm.rate_limit(model, requests_per_second=1)


def test_a_negative_model_rate_is_refused_with_the_key_named() -> None:
    with pytest.raises(tether.UsageError, match=r"rate limit 'openai:gpt-4\.1': per_second must be a positive"):
        llm.rate_limit("openai:gpt-4.1", requests_per_second=-5)


def test_a_key_declared_again_with_other_values_is_refused() -> None:
    with pytest.raises(tether.UsageError, match="declared twice with different values"):
        llm.rate_limit(limits_flows.PACED, requests_per_second=3)
    llm.rate_limit(limits_flows.PACED, requests_per_second=2)  # the same again: a module imported twice


def test_a_model_call_obeys_its_own_key_else_the_longest_matching_pattern() -> None:
    llm.rate_limit("mistral:*", requests_per_second=10)
    llm.rate_limit("mistral:mistral-large-*", requests_per_second=1)
    llm.rate_limit("mistral:mistral-large-latest", requests_per_second=0.5)
    assert limits.for_model("mistral:mistral-small-latest") == limits.get("mistral:*")
    assert limits.for_model("mistral:mistral-large-2411") == limits.get("mistral:mistral-large-*")
    assert limits.for_model("mistral:mistral-large-latest") == limits.get("mistral:mistral-large-latest")
    assert limits.for_model("anthropic:claude") is None
    assert routed(call_model.options, "mistral:mistral-small-latest").limit == "mistral:*"
    assert routed(call_model.options, "anthropic:claude").limit is None


def test_a_step_limit_defaults_its_key_to_the_step_name() -> None:
    @tether.step(rate_limit=tether.RateLimit(per_second=3), name="limits-unit-named")
    def lookup(x: int) -> int:
        return x

    assert lookup.options.limit == "limits-unit-named"
    assert limits.get("limits-unit-named") == tether.RateLimit(per_second=3, key="limits-unit-named")
    with pytest.raises(tether.UsageError, match=r"rate_limit takes tether\.RateLimit"):
        tether.step(rate_limit=5)(lookup.fn)  # type: ignore[call-overload]


def test_limit_queues_keep_their_zone_and_deployment() -> None:
    q = _runtime.limit_queue(_runtime.zone_queue("orders", "vault"), "openai-compatible:m@http://h:1/v1")
    assert q == "orders@vault#openai-compatible:m@http://h:1/v1"
    assert _runtime.base_queue(q) == "orders"
    assert _runtime.queue_zone(q) == "vault"
    assert _runtime.queue_limit(q) == "openai-compatible:m@http://h:1/v1"
    main = _runtime.limit_queue("orders", "openai:*")
    assert (_runtime.base_queue(main), _runtime.queue_zone(main), _runtime.queue_limit(main)) == \
        ("orders", None, "openai:*")
    assert _runtime.queue_limit("orders@vault") is None


def test_workers_serve_each_key_with_the_steps_that_wait_in_it() -> None:
    keys = served_keys(None, [call_model, limits_flows.call_api])
    assert keys["limits-test-api"] == [limits_flows.call_api]
    assert keys[limits_flows.PACED] == [call_model]
    assert served_keys("vault", [call_model, limits_flows.call_api]) == {}


def test_a_cooldown_reason_carries_its_deadline() -> None:
    until = datetime(2030, 1, 2, 3, 4, 5, 250000, tzinfo=UTC)
    reason = cooldown_reason(until, "HTTP 429 from openai:gpt-4.1 (Retry-After 5s)")
    assert cooldown_until(reason) == until
    assert cooldown_until("paused by ops") is None
