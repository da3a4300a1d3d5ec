"""`tether.attempt()`: which attempt of a step is running."""

from __future__ import annotations

import tether
from tests.apps import attempt_flows as app


async def test_a_step_sees_its_attempt_number(tether_client: tether.Client) -> None:
    async with tether.Worker(tether_client):
        # workflow code has no attempt (1); the steps fail twice and succeed on their third attempt
        assert await tether_client.run(app.attempts_seen, 3) == [1, 3, 3]


async def test_outside_a_worker_a_step_is_on_its_first_attempt() -> None:
    assert await app.flaky_async(1) == 1
    assert app.flaky_sync(1) == 1  # type: ignore[comparison-overlap]  # typed awaitable; here the value (tested)
    assert tether.attempt() == 1
