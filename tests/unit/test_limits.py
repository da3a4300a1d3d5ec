"""Rate limits: declared values are checked at once, model calls find their key, queues name their key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

import tether
from tests.apps import limits_flows
from tether import _runtime, limits, llm
from tether.engine.limits import (
    JITTER,
    REACH,
    WINDOW,
    Pacer,
    cooldown_reason,
    cooldown_until,
    served_keys,
)
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


async def test_two_workers_pacers_keep_a_rolling_second_under_the_rate_however_late_calls_arrive() -> None:
    # two workers' pacers of a 30/s key, 40 calls each given at once (the engine's burst); each
    # call reaches the "provider" 0-200 ms after it is let go (a busy worker), answers 30 ms later
    import random

    loop = asyncio.get_running_loop()
    rng = random.Random(11)
    arrivals: list[float] = []

    async def call(p: Pacer) -> None:
        sent = await p.wait()
        await asyncio.sleep(rng.uniform(0.0, 0.2))
        arrivals.append(loop.time())
        await asyncio.sleep(0.03)
        p.done(sent)

    workers = [Pacer(30.0, workers=2), Pacer(30.0, workers=2)]
    assert (workers[0].share, workers[0].window) == (15, 1.0)
    start = loop.time()
    await asyncio.gather(*(call(p) for p in workers for _ in range(40)))
    assert peak_window(arrivals) <= 30, sorted(round(t - start, 3) for t in arrivals)
    # and the rate is used: 80 calls at up to 30/s take at least 2.7 s; a quarter more at most
    assert loop.time() - start < 3.5


async def test_a_hold_stops_every_call_until_it_ends() -> None:
    loop = asyncio.get_running_loop()
    p = Pacer(100.0)
    p.done(await p.wait())
    p.hold(0.3)  # a 429 with Retry-After 0.3 s: the next call waits, however much share is left
    start = loop.time()
    await p.wait()
    assert loop.time() - start >= 0.29


def test_a_share_is_the_rate_per_worker_rounded_down_and_at_least_one_call() -> None:
    assert (Pacer(20.0, workers=2).share, Pacer(20.0, workers=2).window) == (10, 1.0)
    assert (Pacer(5.0, workers=3).share, Pacer(5.0, workers=3).window) == (1, 1.0)  # 3/s: never above 5 in a second
    assert (Pacer(0.5).share, Pacer(0.5).window) == (1, 2.0)  # one call every two seconds


def peak_window(times: list[float], seconds: float = 1.0) -> int:
    """The most of `times` within any window of `seconds`."""
    ts = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(ts):
        j = max(j, i)
        while j < len(ts) and ts[j] < t + seconds:
            j += 1
        best = max(best, j - i)
    return best


async def test_a_call_whose_request_was_written_counts_until_jitter_after_it_not_until_its_answer() -> None:
    # a 2/s key on one worker; model calls that answer after 3 s (any real model call): once each
    # request is reported written, its place frees a window + JITTER later, not a window after
    # the answer (3 s) nor after REACH (1.5 s)
    loop = asyncio.get_running_loop()
    p = Pacer(2.0)
    start = loop.time()
    for _ in range(2):
        (await p.wait()).sent()  # each written as it goes
    third = await p.wait()
    waited = loop.time() - start
    # the first request was written at once: its place frees at WINDOW + JITTER (REACH: 1.5 s)
    assert WINDOW + JITTER - 1e-3 <= waited < WINDOW + JITTER + 0.2, waited
    # an answer sooner than JITTER after the write ends the call's place at the answer
    third.sent()
    third.answered()
    assert third.reached == third.answered_at <= third.sent_at + JITTER


async def test_a_call_the_client_reports_nothing_of_counts_until_reach_or_its_answer() -> None:
    p = Pacer(10.0)
    quiet = await p.wait()
    assert quiet.reached == quiet.went + REACH
    quiet.answered()
    assert quiet.reached == quiet.answered_at <= quiet.went + REACH


async def test_pacers_keep_the_rolling_second_when_calls_are_delayed_alike_after_their_write() -> None:
    # two workers of a 30/s key, 40 calls each at once; each request is written 0-150 ms after its
    # call is let go (a busy loop), then reaches the provider after a common network delay plus
    # up to JITTER more, and answers 2 s later: places are counted from the writes, and hold
    import random

    loop = asyncio.get_running_loop()
    rng = random.Random(5)
    arrivals: list[float] = []

    async def call(p: Pacer) -> None:
        c = await p.wait()
        await asyncio.sleep(rng.uniform(0.0, 0.15))
        c.sent()
        await asyncio.sleep(0.08 + rng.uniform(0.0, JITTER * 0.95))
        arrivals.append(loop.time())
        await asyncio.sleep(2.0)
        c.answered()

    workers = [Pacer(30.0, workers=2), Pacer(30.0, workers=2)]
    start = loop.time()
    await asyncio.gather(*(call(p) for p in workers for _ in range(40)))
    assert peak_window(arrivals) <= 30, sorted(round(t - start, 3) for t in arrivals)
