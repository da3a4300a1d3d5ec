"""The records human tasks leave: what `tether tasks`, the HTTP API and Studio read and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from tether.errors import UsageError

MAX_ANSWER_BYTES = 64 * 1024
"""Largest answer accepted, as JSON text (the HTTP API, the CLI and the workflow check it)."""

TaskKind = Literal["question", "confirm", "escalation"]
TaskStatus = Literal["open", "answered", "expired", "cancelled"]


class HumanTask(BaseModel):
    """One question put to a person by a run, open or closed.

    The timestamps make the records enough for metrics: time to answer is
    `answered_at - opened_at`; an expired task has `closed_at` and no `answered_at`.

    Attributes:
        id: `<run id>.<n>`, n counting the run's tasks from 1.
        run_id: The run that asked.
        workflow: The run's workflow name.
        kind: "question" (ask_human), "confirm" (yes/no) or "escalation" (a failed step).
        question: What the person is asked.
        answer_schema: JSON schema the answer must match.
        context: Data shown with the question (JSON).
        assignee: Who should answer (free text: a person, a team), if anyone in particular.
        status: "open", "answered", "expired" or "cancelled".
        opened_at / expires_at / answered_at / closed_at: Workflow times (UTC).
        answered_by: Who answered, as authenticated by the surface the answer came through:
            `os:USER` (the CLI), `token:NAME` (the HTTP API), `studio:NAME` (a Studio login),
            `local:USER` (loopback without a token), `mcp:CLIENT` (an MCP client).
        claimed_by: The name the answerer gave for themselves (`--as`, a form field, a body
            field); self-declared, so never a proof of who answered.
        answer: The validated answer, as JSON.
        default_on_timeout: Whether the run continues with a default when the task expires.
        step: For escalations, the step that failed.
    """

    id: str
    run_id: str
    workflow: str
    kind: TaskKind = "question"
    question: str
    answer_schema: dict[str, Any]
    context: Any = None
    assignee: str | None = None
    status: TaskStatus = "open"
    opened_at: datetime
    expires_at: datetime | None = None
    answered_at: datetime | None = None
    answered_by: str | None = None
    claimed_by: str | None = None
    answer: Any = None
    closed_at: datetime | None = None
    default_on_timeout: bool = False
    step: str | None = None

    @property
    def answerer(self) -> str:
        """Who answered, for people: `os:alice`, or `token:ops on behalf of cfo` with a claimed name."""
        who = self.answered_by or "unknown"
        return f"{who} on behalf of {self.claimed_by}" if self.claimed_by else who


class AnswerRequest(BaseModel):
    """What the CLI and the HTTP API send to a run to answer one of its tasks.

    Attributes:
        task_id: The task answered.
        answer: The answer, as JSON.
        answered_by: The answerer's authenticated identity (see `HumanTask.answered_by`).
        claimed_by: A name the answerer gave for themselves, if any.
    """

    task_id: str
    answer: Any
    answered_by: str = "unknown"
    claimed_by: str | None = None


def split_task_id(task_id: str) -> tuple[str, int]:
    """`("<run id>", n)` for a task id `<run id>.<n>`.

    Raises:
        UsageError: The id does not have that shape.
    """
    run_id, dot, seq = task_id.rpartition(".")
    if not dot or not run_id or not seq.isdigit():
        raise UsageError(f"{task_id!r} is not a task id; task ids look like RUN_ID.N "
                         "(`tether tasks` lists them)")
    return run_id, int(seq)
