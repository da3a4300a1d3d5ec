"""Where code runs, and what it may ask of whatever runs it: the core's runtime protocol.

The API modules (step, workflow, human, llm, tools, agent, observe) never import the
engine. They ask `current()` what time it is, to schedule a step, to open a human task
or which zone this is, and the answer comes from whichever runtime is running the code:

- `Runtime` itself: plain Python, outside any run (a step called in a unit test).
- `LocalRun`: a workflow function awaited outside the engine (tests, scripts): steps run
  directly, time is the clock, child workflows run inline.
- the engine's runtime (`tether.engine.runtime`), installed when `tether.engine` is
  imported: Temporal workflow code and step attempts on a worker.

`current()` answers with the local run the calling task is in, else the installed engine's
runtime (plain Python itself outside workflow code and step attempts), else plain Python;
like temporalio, which finds the runtime of the code running now rather than being passed it.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

from tether.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from tether.step import Step, StepOptions
    from tether.workflow import Workflow

ZONE_SEPARATOR = "@"
MODELS_MEMO = "tether.models"
"""Memo key of a run's model overrides (`Client.start(models=...)`, an evaluation's `--models`)."""
LIMIT_SEPARATOR = "#"
"""Between a zone's queue and a rate-limit key: `<queue>@<zone>#<key>` (see `tether.limits`)."""


@dataclass(frozen=True)
class Attempt:
    """What the running step attempt knows about itself."""

    run_id: str
    workflow: str
    step: str
    attempt: int
    queue: str


class TaskBoard(Protocol):
    """The human tasks of the running workflow (see `tether.human`)."""

    def open(self, *, question: str, kind: Any, adapter: Any, assignee: str | None, context: Any,
             seconds: float | None, step: str | None, default_on_timeout: bool) -> Any: ...

    async def wait(self, task: Any, seconds: float | None) -> bool: ...

    def close(self, task: Any, status: str) -> None: ...


class Runtime:
    """Plain Python outside any run; the base the other runtimes override.

    Workflow-side questions (time, sleeping, scheduling steps) get their ordinary meaning;
    attempt-side ones (heartbeat, attempt number) have no attempt to speak of.
    """

    # ---- workflow code ----

    def in_workflow(self) -> bool:
        """True in workflow code that the engine runs (durable: replayed after a crash)."""
        return False

    def in_run(self) -> bool:
        """True in workflow code of any run: the engine's, or a workflow awaited directly."""
        return False

    def replaying(self) -> bool:
        """True while workflow code replays history (its effects were already recorded)."""
        return False

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time_ns(self) -> int:
        return time.time_ns()

    def uuid4(self) -> uuid.UUID:
        return uuid.uuid4()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def wait(self, condition: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until `condition()` holds; False if `timeout` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not condition():
            if deadline is not None and loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def patched(self, patch_id: str) -> bool:
        return True

    def continue_as_new(self, args: list[Any]) -> NoReturn:
        raise UsageError("continue_as_new() only works inside a running workflow")

    def run_state(self) -> dict[str, Any]:
        """A dict private to the current run (rebuilt by replay); a fresh one outside runs."""
        return {}

    def memo_value(self, key: str) -> Any:
        """A value of the run's memo as it started (None when absent or outside runs)."""
        return None

    def upsert_memo(self, values: dict[str, Any]) -> None:
        """Add to the run's memo (readable by clients without a worker); nothing outside runs."""
        return None

    def run_models(self) -> dict[str, str]:
        """The model overrides this run was started with (`Client.start(models=...)`); none outside runs.

        Read from the run's start, so replay sees the same mapping.
        """
        return {}

    async def execute_step(self, step: Step[Any, Any], args: Sequence[Any], kwargs: dict[str, Any], *,
                           attempts: int | None = None, options: StepOptions | None = None) -> Any:
        """Run a step call; the engine schedules it, elsewhere the function simply runs."""
        result = step.fn(*args, **kwargs)
        return await result if step.is_async else result

    async def run_child(self, wf: Workflow[Any, Any], args: list[Any]) -> Any:
        return await wf.fn(*args)

    def tasks(self, what: str) -> TaskBoard:
        """The run's human task board; `what` names the caller for the error outside runs."""
        raise UsageError(f"{what}() only works inside a running workflow "
                         "(start it with `tether run` or Client.start)")

    # ---- step attempts (and code anywhere) ----

    def attempt(self) -> Attempt | None:
        """The running step attempt, or None outside one."""
        return None

    def heartbeat(self, *details: Any) -> None:
        return None

    def streams(self) -> bool:
        """True when live events published here reach watchers (inside a step attempt on a worker)."""
        return False

    def publish(self, kind: str, fields: dict[str, Any]) -> None:
        """Publish a live event of the running step attempt ("tokens", "progress", "withheld") to
        the run's watchers (`Run.events()`); does nothing where nobody can watch."""
        return None

    def idempotency_key(self, scope: str) -> str:
        return uuid.uuid4().hex

    def run_id(self) -> str | None:
        return None

    def workflow_name(self) -> str | None:
        return None

    def zone(self) -> str | None:
        """The zone whose code runs here: None in workflow code, "main" or the step's zone in
        an attempt, "local" for code outside any run."""
        return "local"

    async def seal(self, value: BaseModel) -> bytes:
        """`value` encoded and encrypted as this process's payloads are (for out-of-band storage)."""
        raise ConfigError("storing values out of band needs tether's engine (import tether.engine)")

    async def unseal(self, data: bytes, kind: type[BaseModel]) -> Any:
        raise ConfigError("reading values stored out of band needs tether's engine (import tether.engine)")

    def seals_privately(self) -> bool:
        """True when `seal()` encrypts here (this process holds a payload key)."""
        return False

    def blob_store(self) -> Any:
        """The claim-check store of this zone (`put(name, bytes)`, `get(name)`)."""
        raise ConfigError("the payload store needs tether's engine (import tether.engine)")

    def in_sandbox(self) -> bool:
        """True while the engine's sandbox re-imports a workflow module for a run."""
        return False


class LocalRun(Runtime):
    """A workflow function awaited outside the engine: steps run directly, in order."""

    def __init__(self, around: Runtime) -> None:
        self.around = around
        self.state: dict[str, Any] = {}

    def in_run(self) -> bool:
        return True

    def run_state(self) -> dict[str, Any]:
        return self.state

    def attempt(self) -> Attempt | None:
        return self.around.attempt()

    def run_id(self) -> str | None:
        return self.around.run_id()

    async def seal(self, value: BaseModel) -> bytes:
        return await self.around.seal(value)

    async def unseal(self, data: bytes, kind: type[BaseModel]) -> Any:
        return await self.around.unseal(data, kind)

    def seals_privately(self) -> bool:
        return self.around.seals_privately()

    def blob_store(self) -> Any:
        return self.around.blob_store()


OUTSIDE = Runtime()
_engine: Runtime | None = None
_local: contextvars.ContextVar[Runtime | None] = contextvars.ContextVar("tether_runtime", default=None)


def install(engine: Runtime) -> None:
    """Make `engine` answer for the code it runs (called once, by `tether.engine`)."""
    global _engine
    _engine = engine


def engine() -> Runtime:
    """The installed engine's runtime (plain Python when none is installed)."""
    return _engine or OUTSIDE


def current() -> Runtime:
    """The runtime of the code running now."""
    local = _local.get()
    if local is not None:
        return local
    return _engine or OUTSIDE


def enter_local_run() -> contextvars.Token[Runtime | None]:
    """Run the calling task's workflow code locally until `leave_local_run(token)`."""
    return _local.set(LocalRun(engine()))


def leave_local_run(token: contextvars.Token[Runtime | None]) -> None:
    _local.reset(token)


def zone_queue(base: str, zone: str | None) -> str:
    """The task queue that serves `zone` for a deployment whose main queue is `base`."""
    return base if zone is None else f"{base}{ZONE_SEPARATOR}{zone}"


def base_queue(queue: str) -> str:
    """The main queue of a deployment, given any of its queues."""
    return queue.split(LIMIT_SEPARATOR, 1)[0].split(ZONE_SEPARATOR, 1)[0]


def limit_queue(queue: str, key: str) -> str:
    """The task queue of rate-limit `key` beside the zone queue `queue` (its steps wait there)."""
    return f"{queue}{LIMIT_SEPARATOR}{key}"


def queue_zone(queue: str) -> str | None:
    """The zone a task queue serves (None for the main queue), rate-limit queues included."""
    zoned = queue.split(LIMIT_SEPARATOR, 1)[0]
    return zoned.split(ZONE_SEPARATOR, 1)[1] if ZONE_SEPARATOR in zoned else None


def queue_limit(queue: str) -> str | None:
    """The rate-limit key whose queue `queue` is, or None for an ordinary queue."""
    return queue.split(LIMIT_SEPARATOR, 1)[1] if LIMIT_SEPARATOR in queue else None
