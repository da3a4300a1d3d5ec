"""Rate-limited model calls and steps: the limits tests' app.

The model calls go to a loopback `ChatServer` whose URL the test gives as the workflow's input;
the limits match it by pattern, so worker processes that import this module know them too.
"""

from __future__ import annotations

import tether
from tether import llm

PACED = "openai-compatible:paced@*"
COOLED = "openai-compatible:cooled@*"
WINDOWED = "openai-compatible:windowed@*"

llm.rate_limit(PACED, requests_per_second=2)
llm.rate_limit(COOLED, requests_per_second=50, max_concurrent=4)
llm.rate_limit(WINDOWED, requests_per_second=10)


@tether.step(rate_limit=tether.RateLimit(per_second=5, max_concurrent=2, key="limits-test-api"))
def call_api(n: int) -> int:
    """A step limited by its own key."""
    return n * 2


@tether.workflow
async def ask_model(model: str) -> str:
    """One model call to `model` (rate-limited when it matches a declared pattern)."""
    return (await llm.chat("Say hi", model=model)).text


@tether.workflow
async def use_api(n: int) -> int:
    """One call of the rate-limited step."""
    return await call_api(n)
