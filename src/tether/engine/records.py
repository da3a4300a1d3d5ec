"""What a run's history says, as tether shows it: its steps, sleeps, child runs, tasks and notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class StepRecord:
    """One step (activity), sleep (timer) or child run in a run's history."""

    kind: str  # "step" | "sleep" | "child" | "human" | "note"
    name: str
    id: str
    status: str  # scheduled | running | retrying | completed | failed | timed out | cancelled
    attempts: int = 0
    zone: str | None = None
    scheduled_at: datetime | None = None
    ended_at: datetime | None = None
    error: str | None = None
    error_type: str | None = None  # the failed step's error class, e.g. "EgressBlocked"
    last_failure: str | None = None
    input: list[Any] = field(default_factory=list)
    result: Any = None
    waiting_for: str | None = None  # e.g. "a worker in zone vault" when no worker polls its queue
    heartbeat_timeout: float | None = None  # seconds, as scheduled
    waiting_since: datetime | None = None  # when the pending attempt became due and no worker took it
    lost: str | None = None  # e.g. "worker lost at 14:02:11, retry due 14:02:21"

    @property
    def duration(self) -> float | None:
        """Seconds from scheduling to the end, when it has ended."""
        if self.scheduled_at and self.ended_at:
            return (self.ended_at - self.scheduled_at).total_seconds()
        return None


@dataclass
class RunHistory:
    """What a run's history says: its input, outcome, steps and any stuck workflow task."""

    input: Any = None
    result: Any = None
    error: str | None = None
    error_type: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    workflow_task_error: str | None = None
